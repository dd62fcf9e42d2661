"""Check the committed fixtures against an independent NumPy float64 model of design.md's math.

usage: verify_fixtures.py [--dir fixtures] [--tol 1e-9] [--fd-samples 3]

For every forward case: NumPy output == output_f64 (max abs diff <= tol), and output_f32 is
within 1e-4 of it. For every grad case: NumPy loss == loss_f64, and central finite differences
of the NumPy loss agree with grad.<name> at a few random entries of every parameter. Exit 1 on
any mismatch. No torch here: only numpy, scipy (erf) and safetensors.numpy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file
from scipy.special import erf

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Only the TOML defaults and checks; the math below is independent of spectrans and torch.
from reference import normalise_config  # noqa: E402

FILTER_ACT = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "identity": lambda x: x,
}
FFN_ACT = {
    "gelu": lambda x: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0))),
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "identity": lambda x: x,
}


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) * w + b over the last axis, biased variance."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def resample(w: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of rows (S, D) -> (n, D), align_corners = false."""
    s = w.shape[0]
    if s == n:
        return w
    src = np.maximum((np.arange(n) + 0.5) * (s / n) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), s - 1)
    i1 = np.minimum(i0 + 1, s - 1)
    lam = (src - i0)[:, None]
    return (1.0 - lam) * w[i0] + lam * w[i1]


def global_filter(x: np.ndarray, wr: np.ndarray, wi: np.ndarray, act: str, norm: str) -> np.ndarray:
    """Re(IFFT(H * FFT(x))) along the sequence axis, H = act(Wr) + i act(Wi) resampled to N."""
    n = x.shape[1]
    f = FILTER_ACT[act]
    h = f(resample(wr, n)) + 1j * f(resample(wi, n))
    return np.real(np.fft.ifft(np.fft.fft(x, axis=1, norm=norm) * h[None], axis=1, norm=norm))


def positions(x: np.ndarray, m: dict[str, Any], p: dict[str, np.ndarray]) -> np.ndarray:
    kind = m["positional_encoding_type"]
    if not m["use_positional_encoding"] or kind == "none":
        return x
    n, d = x.shape[1], x.shape[2]
    pos = np.arange(n, dtype=np.float64)[:, None]
    if kind == "sinusoidal":
        ang = pos * np.exp(-np.arange(0, d, 2) * np.log(10000.0) / d)
        table = np.zeros((n, d))
        table[:, 0::2] = np.sin(ang)
        table[:, 1::2] = np.cos(ang)
        return x + table[None]
    if kind == "learned":
        return x + p["positional_encoding.position_embeddings.weight"][:n][None]
    if kind == "rotary":
        ang = pos / 10000.0 ** (np.arange(0, d, 2) / d)
        x1, x2 = x[..., : d // 2], x[..., d // 2 :]
        c, s = np.cos(ang)[None], np.sin(ang)[None]
        return np.concatenate([x1 * c - x2 * s, x1 * s + x2 * c], axis=-1)
    raise ValueError(kind)


def forward(cfg: dict[str, Any], p: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> np.ndarray:
    m, mixing, ffn = cfg["model"], cfg["layers"]["mixing"], cfg["layers"]["ffn"]
    if "inputs_embeds" in inputs:
        x = inputs["inputs_embeds"].astype(np.float64)
    else:
        x = p["embedding.weight"][inputs["input_ids"]]
    x = positions(x, m, p)
    eps = float(m["norm_eps"])
    act = FFN_ACT[ffn.get("activation", "gelu")]
    for i in range(m["num_layers"]):
        b = f"blocks.{i}."
        y = layer_norm(x, p[b + "norm1.weight"], p[b + "norm1.bias"], eps)
        x = x + global_filter(
            y,
            p[b + "mixing_layer.filter_real"],
            p[b + "mixing_layer.filter_imag"],
            m["filter_activation"],
            mixing.get("fft_norm", "ortho"),
        )
        y = layer_norm(x, p[b + "norm2.weight"], p[b + "norm2.bias"], eps)
        hdn = act(y @ p[b + "ffn.fc1.weight"].T + p[b + "ffn.fc1.bias"])
        x = x + hdn @ p[b + "ffn.fc2.weight"].T + p[b + "ffn.fc2.bias"]
    x = layer_norm(x, p["final_norm.weight"], p["final_norm.bias"], eps)
    if "output_head.classifier.weight" in p:
        return x[:, 0] @ p["output_head.classifier.weight"].T + p["output_head.classifier.bias"]
    if "output_head.regressor.weight" in p:
        if "attention_mask" in inputs:
            mask = (inputs["attention_mask"] != 0).astype(np.float64)[..., None]
            pooled = (x * mask).sum(1) / mask.sum(1)
        else:
            pooled = x.mean(1)
        return pooled @ p["output_head.regressor.weight"].T + p["output_head.regressor.bias"]
    if "output_head.lm_head.weight" in p:
        return x @ p["output_head.lm_head.weight"].T + p["output_head.lm_head.bias"]
    return x


def loss_of(kind: str, out: np.ndarray, targets: np.ndarray) -> float:
    if kind == "ce":
        logits = out.reshape(-1, out.shape[-1])
        t = targets.reshape(-1)
        mx = logits.max(-1, keepdims=True)
        lse = np.log(np.exp(logits - mx).sum(-1)) + mx[:, 0]
        return float((lse - logits[np.arange(len(t)), t]).mean())
    return float(((out - targets) ** 2).mean())


def load_case(d: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    with open(d / "config.toml", "rb") as f:
        cfg = normalise_config(tomllib.load(f))
    weights = {k: v.astype(np.float64) for k, v in load_file(str(d / "weights.safetensors")).items()}
    return cfg, weights, load_file(str(d / "inputs.safetensors")), load_file(str(d / "expected.safetensors"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="fixtures")
    parser.add_argument("--tol", type=float, default=1e-9)
    parser.add_argument("--fd-samples", type=int, default=3)
    args = parser.parse_args()
    root = Path(args.dir)
    manifest = json.loads((root / "manifest.json").read_text())
    rng = np.random.default_rng(0)
    failures = []
    for entry in manifest:
        d = root / entry["kind"] / entry["case"]
        cfg, p, inputs, expected = load_case(d)
        if entry["kind"] == "forward":
            out = forward(cfg, p, inputs)
            err64 = np.abs(out - expected["output_f64"]).max()
            err32 = np.abs(out - expected["output_f32"]).max()
            ok = out.shape == expected["output_f64"].shape and err64 <= args.tol and err32 <= 1e-4
            print(f"forward/{entry['case']:28s} f64 diff {err64:.2e}  f32 diff {err32:.2e}  {'ok' if ok else 'FAIL'}")
        else:
            targets = inputs.pop("targets")
            loss = loss_of(entry["loss"], forward(cfg, p, inputs), targets)
            loss_err = abs(loss - float(expected["loss_f64"][0]))
            worst = 0.0
            for key, g in expected.items():
                if not key.startswith("grad."):
                    continue
                name = key[len("grad.") :]
                w = p[name]
                for _ in range(args.fd_samples):
                    idx = tuple(int(rng.integers(0, s)) for s in w.shape)
                    h = 1e-5 * max(1.0, abs(w[idx]))
                    orig = w[idx]
                    w[idx] = orig + h
                    up = loss_of(entry["loss"], forward(cfg, p, inputs), targets)
                    w[idx] = orig - h
                    down = loss_of(entry["loss"], forward(cfg, p, inputs), targets)
                    w[idx] = orig
                    fd = (up - down) / (2 * h)
                    worst = max(worst, abs(fd - g[idx]) / max(1.0, abs(fd)))
            ok = loss_err <= args.tol and worst <= 1e-6
            print(f"grad/{entry['case']:31s} loss diff {loss_err:.2e}  fd grad rel diff {worst:.2e}  {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(f"{entry['kind']}/{entry['case']}")
    if failures:
        print(f"{len(failures)} mismatched: {', '.join(failures)}")
        return 1
    print(f"all {len(manifest)} cases agree with the NumPy model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
