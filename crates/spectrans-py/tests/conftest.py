"""Shared helpers of the spectrans_rs tests: the fixtures' paths and a small safetensors reader
(NumPy only, so the tests need nothing but numpy and pytest)."""

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "fixtures"

_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path):
    """Every tensor of a safetensors file, as a dict of NumPy arrays."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]])
        out[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(info["shape"]).copy()
    return out


def forward_cases():
    """The forward fixtures listed in fixtures/manifest.json: (case, entry)."""
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    return [(c["case"], c) for c in manifest if c["kind"] == "forward"]


def case_dir(case):
    return FIXTURES / "forward" / case


def model_kwargs(inputs):
    """Forward arguments from a fixture's inputs file (embeds preferred, as the CLI does)."""
    kwargs = {}
    if "inputs_embeds" in inputs:
        kwargs["inputs_embeds"] = inputs["inputs_embeds"]
    elif "input_ids" in inputs:
        kwargs["input_ids"] = inputs["input_ids"]
    if "attention_mask" in inputs:
        kwargs["attention_mask"] = inputs["attention_mask"]
    return kwargs


def spectrans_binary():
    """A release `spectrans` CLI: $SPECTRANS_BIN, else target/release/spectrans, else None."""
    env = os.environ.get("SPECTRANS_BIN")
    if env:
        return env
    candidate = ROOT / "target" / "release" / "spectrans"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which("spectrans") if os.environ.get("SPECTRANS_USE_PATH") else None


@pytest.fixture(scope="session")
def small_case():
    """A classifier fixture: (config path, weights path, inputs)."""
    d = case_dir("cls_num_classes")
    return d / "config.toml", d / "weights.safetensors", read_safetensors(d / "inputs.safetensors")
