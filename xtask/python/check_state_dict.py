"""Prove that a safetensors checkpoint loads into the spectrans (PyTorch) model.

usage: check_state_dict.py CONFIG WEIGHTS [--inputs I --expected O] [--tol 1e-4]

Builds the spectrans model from CONFIG and loads WEIGHTS with strict=True. A file without
buffers (positional_encoding.pe, positional_encoding.inv_freq) still passes: then it loads with
strict=False and fails only if a PARAMETER is missing, or any key is unexpected or misshapen.
With --inputs/--expected it runs forward in eval mode on the inputs (input_ids or
inputs_embeds, optional attention_mask) and compares with `output` (or `output_f32`) in the
expected file: prints the max abs difference and exits 1 above --tol.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402


def check_keys(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Problems with `state` against the model: missing params, unexpected or misshapen keys."""
    own = model.state_dict()
    params = {name for name, _ in model.named_parameters()}
    problems = []
    for name in sorted(params - set(state)):
        problems.append(f"missing parameter {name} {tuple(own[name].shape)}")
    for name in sorted(set(state) - set(own)):
        problems.append(f"unexpected key {name} {tuple(state[name].shape)}")
    for name in sorted(set(state) & set(own)):
        if tuple(state[name].shape) != tuple(own[name].shape):
            problems.append(
                f"{name}: shape {tuple(state[name].shape)}, expected {tuple(own[name].shape)}"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("weights")
    parser.add_argument("--inputs")
    parser.add_argument("--expected")
    parser.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args()
    if (args.inputs is None) != (args.expected is None):
        parser.error("--inputs and --expected go together")

    config = reference.load_config(args.config)
    model = reference.build_model(config)
    state = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in load_file(args.weights).items()}
    problems = check_keys(model, state)
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        return 1
    missing_buffers = sorted(set(model.state_dict()) - set(state))
    model.load_state_dict(state, strict=not missing_buffers)
    note = f" (buffers kept from the model: {', '.join(missing_buffers)})" if missing_buffers else ""
    print(f"loaded {len(state)} tensors into {type(model).__name__}{note}")

    if args.inputs is None:
        return 0
    inputs = load_file(args.inputs)
    expected = load_file(args.expected)
    key = "output" if "output" in expected else "output_f32"
    if key not in expected:
        print(f"error: {args.expected} has neither `output` nor `output_f32`", file=sys.stderr)
        return 1
    kwargs = {}
    if "input_ids" in inputs:
        kwargs["input_ids"] = inputs["input_ids"].to(torch.int64)
    if "inputs_embeds" in inputs:
        kwargs["inputs_embeds"] = inputs["inputs_embeds"].to(torch.float32)
    if "attention_mask" in inputs:
        kwargs["attention_mask"] = (inputs["attention_mask"] != 0).to(torch.int64)
    model.eval()
    with torch.no_grad():
        output = model(**kwargs)
    want = expected[key].to(torch.float32)
    if tuple(output.shape) != tuple(want.shape):
        print(f"error: output shape {tuple(output.shape)}, expected {tuple(want.shape)}", file=sys.stderr)
        return 1
    diff = float((output - want).abs().max()) if output.numel() else 0.0
    print(f"max abs diff vs `{key}`: {diff:.3e} (tol {args.tol:g})")
    return 0 if diff <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
