"""Generate the PyTorch (spectrans 0.1.0) parity fixtures under fixtures/.

Run by `cargo xtask gen-fixtures [--out DIR]`. Every case is seeded from its name, so a
regeneration repeats the same files. Layout (read by the Rust parity tests):

  manifest.json                       [{kind, case, description, loss, input, torch_f32_err}]
  forward/<case>/config.toml          the model config
  forward/<case>/weights.safetensors  state_dict in F32, buffers included
  forward/<case>/inputs.safetensors   input_ids (I64) | inputs_embeds (F32) [+ attention_mask I64]
  forward/<case>/expected.safetensors output_f32 (F32, eval), output_f64 (F64, eval)
  grad/<case>/...                     dropout 0; inputs add `targets`; expected holds loss_f64,
                                      loss_f32, grad.<param> (F64), grad_f32.<param> (F32)

float64 references use positional tables recomputed in float64 (reference.to_float64).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402


@dataclass
class Case:
    """One fixture: a config (model fields + optional layer tables) and its inputs."""

    name: str
    description: str
    model: dict[str, Any]
    batch: int = 2
    seq_len: int | None = None  # None: the config's sequence_length
    inputs_embeds: bool = False
    attention_mask: bool = False
    loss: str | None = None  # grad cases: "ce" | "mse"
    mixing: dict[str, Any] = field(default_factory=dict)
    ffn: dict[str, Any] = field(default_factory=dict)


BASE = dict(hidden_dim=16, num_layers=2, sequence_length=16, vocab_size=50)


def fwd(name: str, description: str, batch: int = 2, **kw: Any) -> Case:
    model = dict(BASE, dropout=0.1)
    return _case(name, description, model, batch, kw)


def grad(name: str, description: str, loss: str, batch: int = 2, **kw: Any) -> Case:
    model = dict(BASE, dropout=0.0)
    case = _case(name, description, model, batch, kw)
    case.loss = loss
    return case


def _case(name: str, description: str, model: dict[str, Any], batch: int, kw: dict[str, Any]) -> Case:
    opts = {k: kw.pop(k) for k in ("seq_len", "inputs_embeds", "attention_mask", "mixing", "ffn") if k in kw}
    model.update(kw)
    model = {k: v for k, v in model.items() if v is not None}
    return Case(name=name, description=description, model=model, batch=batch, **opts)


FORWARD_CASES = [
    # output heads
    fwd("cls_num_classes", "classification with num_classes=5: cls-token Linear", num_classes=5),
    fwd("cls_without_num_classes", "classification without num_classes: hidden states (B,N,D)"),
    fwd("regression", "regression: Linear(D,1) on the mean over all tokens", output_type="regression"),
    fwd("regression_attention_mask", "regression with attention_mask, padding ids 0 at row ends",
        output_type="regression", attention_mask=True, batch=3),
    fwd("sequence_num_classes", "sequence head to num_classes=7", output_type="sequence", num_classes=7),
    fwd("sequence_vocab_only", "sequence head to vocab_size=50", output_type="sequence"),
    fwd("sequence_neither_to_hidden", "sequence head without vocab or classes: D outputs, inputs_embeds",
        output_type="sequence", vocab_size=None, inputs_embeds=True),
    fwd("lm_num_classes", "lm head to num_classes=11", output_type="lm", num_classes=11),
    fwd("lm_vocab", "lm head to vocab_size=50", output_type="lm"),
    fwd("output_none_h32", "output_type none: hidden states, hidden 32", output_type="none", hidden_dim=32),
    # filter activations
    fwd("filter_sigmoid", "sigmoid filter activation, classification", filter_activation="sigmoid",
        num_classes=4),
    fwd("filter_tanh", "tanh filter activation", filter_activation="tanh", num_classes=4),
    fwd("filter_identity", "identity filter activation", filter_activation="identity", num_classes=4),
    # positional encodings
    fwd("pos_sinusoidal", "sinusoidal positions, hidden states", positional_encoding_type="sinusoidal",
        output_type="none"),
    fwd("pos_learned", "learned positions", positional_encoding_type="learned", output_type="none"),
    fwd("pos_rotary", "rotary positions", positional_encoding_type="rotary", output_type="none"),
    fwd("pos_none", "positional_encoding_type none", positional_encoding_type="none", output_type="none"),
    fwd("pos_disabled", "use_positional_encoding = false (type sinusoidal ignored)",
        use_positional_encoding=False, output_type="none"),
    # input lengths vs sequence_length = 16 (filters interpolated when N != S)
    fwd("len_shorter_sinusoidal", "N=10 < S=16: interpolated filters, pe rows 0..10",
        seq_len=10, output_type="sequence", num_classes=6),
    fwd("len_shorter_odd_learned", "N=9 (odd) < S=16 with learned positions", seq_len=9,
        positional_encoding_type="learned", output_type="none"),
    fwd("len_shorter_prime_13", "N=13 (prime) < S=16", seq_len=13, output_type="none", batch=3),
    fwd("len_longer_rotary", "N=24 > S=16 with rotary (table grows)", seq_len=24,
        positional_encoding_type="rotary", output_type="sequence", num_classes=6),
    fwd("len_longer_odd_none", "N=21 (odd) > S=16 without positions", seq_len=21,
        positional_encoding_type="none", output_type="none"),
    fwd("len_one", "N=1 < S=16: the filter resampled to one row", seq_len=1, output_type="none", batch=3),
    fwd("len_one_seq_one", "S=1, N=1", sequence_length=1, output_type="none"),
    fwd("seq_odd_15", "S=N=15 (odd)", sequence_length=15, output_type="none"),
    fwd("seq_prime_13", "S=N=13 (prime)", sequence_length=13, output_type="sequence", num_classes=5),
    # inputs and model types
    fwd("inputs_embeds", "inputs_embeds (no embedding), classification", vocab_size=None,
        inputs_embeds=True, num_classes=3),
    fwd("gfnet_encoder", "GFNetEncoder: inputs_embeds -> hidden states", model_type="gfnet_encoder",
        vocab_size=None, inputs_embeds=True),
    fwd("layers_4", "four blocks", num_layers=4, output_type="none"),
    # layer options
    fwd("fft_norm_forward", "[layers.mixing] fft_norm = forward", output_type="none",
        mixing={"type": "global_filter", "fft_norm": "forward"}),
    fwd("fft_norm_backward", "[layers.mixing] fft_norm = backward", output_type="none",
        mixing={"type": "global_filter", "fft_norm": "backward"}),
    fwd("ffn_relu", "[layers.ffn] activation = relu", output_type="none", ffn={"activation": "relu"}),
    fwd("ffn_silu", "[layers.ffn] activation = silu", output_type="none",
        ffn={"hidden_dim": 16, "intermediate_dim": 64, "activation": "silu"}),
    fwd("ffn_hidden_dim_48", "ffn_hidden_dim = 48", ffn_hidden_dim=48, output_type="none"),
    fwd("norm_eps_1e6", "norm_eps = 1e-6", norm_eps=1e-6, output_type="none"),
    fwd("big_h128_s64", "hidden 128, sequence 64, one block, ffn 256, classification", hidden_dim=128,
        sequence_length=64, num_layers=1, ffn_hidden_dim=256, num_classes=10, vocab_size=64),
]

GRAD_CASES = [
    grad("ce_classification", "ce on classification logits (sinusoidal)", "ce", num_classes=5),
    grad("mse_regression_mask", "mse on regression with attention_mask", "mse", output_type="regression",
         attention_mask=True, batch=3),
    grad("ce_sequence", "ce over every token of a sequence head", "ce", output_type="sequence",
         num_classes=7),
    grad("ce_lm", "ce over every token of an lm head (vocab)", "ce", output_type="lm"),
    grad("mse_output_none", "mse on hidden states", "mse", output_type="none"),
    grad("pos_sinusoidal", "sinusoidal positions", "ce", output_type="sequence", num_classes=6),
    grad("pos_learned", "learned positions (position_embeddings grads)", "ce", output_type="sequence",
         num_classes=6, positional_encoding_type="learned"),
    grad("pos_rotary", "rotary positions", "ce", output_type="sequence", num_classes=6,
         positional_encoding_type="rotary"),
    grad("pos_none", "no positions", "ce", output_type="sequence", num_classes=6,
         positional_encoding_type="none"),
    grad("interp_shorter", "N=11 < S=16: grads through filter interpolation", "mse", seq_len=11,
         output_type="none"),
    grad("interp_longer", "N=23 > S=16 with rotary: grads through filter interpolation", "mse",
         seq_len=23, positional_encoding_type="rotary", output_type="none"),
    grad("filter_tanh", "tanh filters", "ce", filter_activation="tanh", num_classes=4),
    grad("filter_identity", "identity filters", "ce", filter_activation="identity", num_classes=4),
    grad("inputs_embeds", "inputs_embeds, no embedding parameter", "ce", vocab_size=None,
         inputs_embeds=True, num_classes=3),
    grad("gradient_checkpointing", "gradient_checkpointing = true (same grads)", "ce",
         gradient_checkpointing=True, num_classes=5),
    grad("layers_3", "three blocks", "mse", num_layers=3, output_type="none"),
    grad("fft_norm_forward", "[layers.mixing] fft_norm = forward", "mse", output_type="none",
         mixing={"type": "global_filter", "fft_norm": "forward"}),
    grad("ffn_silu", "[layers.ffn] activation = silu", "mse", output_type="none",
         ffn={"activation": "silu"}),
]


def case_config(case: Case) -> dict[str, Any]:
    raw: dict[str, Any] = {"model": dict(case.model)}
    layers = {}
    if case.mixing:
        layers["mixing"] = case.mixing
    if case.ffn:
        layers["ffn"] = case.ffn
    if layers:
        raw["layers"] = layers
    return raw


def to_toml(raw: dict[str, Any]) -> str:
    """Write the (flat-valued) config as TOML; keys in a stable order."""
    lines = []
    for table, path in [(raw["model"], "model")] + [
        (t, f"layers.{k}") for k, t in raw.get("layers", {}).items()
    ]:
        lines.append(f"[{path}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"cannot write {value!r} as a TOML value")


def case_seed(kind: str, name: str) -> int:
    return zlib.crc32(f"{kind}/{name}".encode())


def make_inputs(case: Case, config: dict[str, Any], gen: torch.Generator) -> dict[str, torch.Tensor]:
    m = config["model"]
    n = case.seq_len if case.seq_len is not None else m["sequence_length"]
    b = case.batch
    inputs: dict[str, torch.Tensor] = {}
    if case.inputs_embeds:
        inputs["inputs_embeds"] = torch.randn(b, n, m["hidden_dim"], generator=gen)
    else:
        inputs["input_ids"] = torch.randint(0, m["vocab_size"], (b, n), generator=gen, dtype=torch.int64)
    if case.attention_mask:
        # Row r keeps its first n - r*max(1, n//4) tokens (row 0 keeps all); padding ids are 0.
        mask = torch.ones(b, n, dtype=torch.int64)
        for r in range(b):
            keep = max(1, n - r * max(1, n // 4))
            mask[r, keep:] = 0
        inputs["attention_mask"] = mask
        if "input_ids" in inputs:
            inputs["input_ids"] = inputs["input_ids"] * mask
        else:
            inputs["inputs_embeds"] = inputs["inputs_embeds"] * mask.unsqueeze(-1)
    return inputs


def run_model(model: torch.nn.Module, inputs: dict[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    kwargs = {}
    if "input_ids" in inputs:
        kwargs["input_ids"] = inputs["input_ids"]
    if "inputs_embeds" in inputs:
        kwargs["inputs_embeds"] = inputs["inputs_embeds"].to(dtype)
    if "attention_mask" in inputs:
        kwargs["attention_mask"] = inputs["attention_mask"]
    return model(**kwargs)


def make_targets(case: Case, output: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    if case.loss == "ce":
        classes = output.shape[-1]
        return torch.randint(0, classes, output.shape[:-1], generator=gen, dtype=torch.int64)
    return torch.randn(output.shape, generator=gen, dtype=torch.float32)


def loss_of(loss: str, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss of `spectrans grad`: mean cross-entropy over every row, or mean squared error."""
    if loss == "ce":
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), targets.reshape(-1))
    return F.mse_loss(output, targets.to(output.dtype))


def state_dict_f32(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()}


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def build_case(kind: str, case: Case) -> tuple[dict[str, Any], torch.nn.Module, torch.Generator]:
    raw = case_config(case)
    config = reference.normalise_config(raw)
    seed = case_seed(kind, case.name)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = reference.build_model(config)
    reference.randomise_weights(model, gen)
    return raw, model, gen


def gen_forward(case: Case, out: Path) -> dict[str, Any]:
    raw, model, gen = build_case("forward", case)
    config = reference.normalise_config(raw)
    inputs = make_inputs(case, config, gen)
    model64 = reference.to_float64(model)
    model.eval()
    model64.eval()
    with torch.no_grad():
        out32 = run_model(model, inputs, torch.float32)
        out64 = run_model(model64, inputs, torch.float64)
    err = max_abs(out32, out64)
    d = out / "forward" / case.name
    d.mkdir(parents=True)
    (d / "config.toml").write_text(to_toml(raw))
    save_file(state_dict_f32(model), str(d / "weights.safetensors"))
    save_file({k: v.contiguous() for k, v in inputs.items()}, str(d / "inputs.safetensors"))
    save_file(
        {"output_f32": out32.contiguous(), "output_f64": out64.contiguous()},
        str(d / "expected.safetensors"),
    )
    print(f"forward/{case.name:28s} output {tuple(out32.shape)!s:16s} torch f32 err {err:.3e}")
    return _manifest("forward", case, None, err)


def gen_grad(case: Case, out: Path) -> dict[str, Any]:
    raw, model, gen = build_case("grad", case)
    config = reference.normalise_config(raw)
    inputs = make_inputs(case, config, gen)
    model64 = reference.to_float64(model)
    model.train()
    model64.train()
    out64 = run_model(model64, inputs, torch.float64)
    targets = make_targets(case, out64, gen)
    loss64 = loss_of(case.loss, out64, targets)
    loss64.backward()
    out32 = run_model(model, inputs, torch.float32)
    loss32 = loss_of(case.loss, out32, targets)
    loss32.backward()

    expected = {
        "loss_f64": loss64.detach().reshape(1),
        "loss_f32": loss32.detach().reshape(1),
    }
    errs = {"loss": abs(float(loss32.detach()) - float(loss64.detach()))}
    params32 = dict(model.named_parameters())
    for name, p64 in model64.named_parameters():
        if not p64.requires_grad:
            continue
        if p64.grad is None or params32[name].grad is None:
            raise RuntimeError(f"grad/{case.name}: parameter {name} got no gradient")
        expected[f"grad.{name}"] = p64.grad.detach().contiguous()
        expected[f"grad_f32.{name}"] = params32[name].grad.detach().contiguous()
        errs[name] = max_abs(params32[name].grad, p64.grad)
    err = max(errs.values())
    d = out / "grad" / case.name
    d.mkdir(parents=True)
    (d / "config.toml").write_text(to_toml(raw))
    save_file(state_dict_f32(model), str(d / "weights.safetensors"))
    save_file(
        {**{k: v.contiguous() for k, v in inputs.items()}, "targets": targets.contiguous()},
        str(d / "inputs.safetensors"),
    )
    save_file(expected, str(d / "expected.safetensors"))
    worst = max(errs, key=errs.get)
    print(
        f"grad/{case.name:31s} loss {float(loss64):.6f} ({case.loss}) torch f32 err {err:.3e}"
        f" (worst: {worst})"
    )
    return _manifest("grad", case, case.loss, err)


def _manifest(kind: str, case: Case, loss: str | None, err: float) -> dict[str, Any]:
    return {
        "kind": kind,
        "case": case.name,
        "description": case.description,
        "loss": loss,
        "input": "inputs_embeds" if case.inputs_embeds else "input_ids",
        "torch_f32_err": float(f"{err:.6g}"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="fixtures", help="output directory (replaced)")
    parser.add_argument("--only", default=None, help="comma-separated case names (for debugging)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: the same float32 reduction order on every run
    out = Path(args.out)
    for sub in ("forward", "grad"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    start = time.perf_counter()
    manifest = []
    names = set()
    for kind, cases, gen_fn in (("forward", FORWARD_CASES, gen_forward), ("grad", GRAD_CASES, gen_grad)):
        for case in cases:
            if (kind, case.name) in names:
                raise RuntimeError(f"duplicate case name {kind}/{case.name}")
            names.add((kind, case.name))
            if only is None or case.name in only:
                manifest.append(gen_fn(case, out))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{len(manifest)} cases, {size / 1e6:.2f} MB in {out}, {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
