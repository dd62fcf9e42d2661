"""Build the spectrans 0.1.0 reference model from a spectrans-rs TOML config.

Imported by gen_fixtures.py, check_state_dict.py and bench_torch.py (run by `cargo xtask`).
The TOML schema is the one in docs / design.md: a `[model]` table with GFNetModelConfig
fields, plus optional `[layers.mixing]` and `[layers.ffn]` tables.

`build_model(config)` constructs `GFNet(...)` (or `GFNetEncoder`) with the kwargs spectrans'
`GFNet.from_config` passes, then applies the `[layers.*]` extras GFNet does not take as kwargs:
the mixing FFT norm, the FFN activation, per-layer dropouts and the filter init std.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from spectrans.models.base import PositionalEncoding, RotaryPositionalEncoding
from spectrans.models.gfnet import GFNet, GFNetEncoder
from spectrans.transforms.fourier import FFT1D

MODEL_DEFAULTS: dict[str, Any] = {
    "model_type": "gfnet",
    "dropout": 0.0,
    "vocab_size": None,
    "num_classes": None,
    "ffn_hidden_dim": None,
    "use_positional_encoding": True,
    "positional_encoding_type": "sinusoidal",
    "norm_eps": 1e-12,
    "output_type": "classification",
    "gradient_checkpointing": False,
    "filter_activation": "sigmoid",
}
MODEL_REQUIRED = ("hidden_dim", "num_layers", "sequence_length")
MIXING_KEYS = {
    "type",
    "hidden_dim",
    "sequence_length",
    "activation",
    "dropout",
    "learnable_filters",
    "fft_norm",
    "filter_init_std",
}
FFN_KEYS = {"hidden_dim", "intermediate_dim", "activation", "dropout"}
FFT_NORMS = ("ortho", "forward", "backward")

# FFN activations: spectrans' FeedForwardNetwork table plus the rest of its ActivationType.
FFN_ACTIVATIONS = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


class ConfigError(ValueError):
    """A TOML config the reference cannot build; the message names the field."""


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config and return {"model": {...all fields, defaults filled...}, "layers": {...}}."""
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    return normalise_config(raw)


def normalise_config(raw: dict[str, Any]) -> dict[str, Any]:
    unknown_top = set(raw) - {"model", "layers"}
    if unknown_top:
        raise ConfigError(f"unknown top-level table(s) {sorted(unknown_top)}; expected [model], [layers]")
    if "model" not in raw:
        raise ConfigError("missing [model] table")
    model = dict(raw["model"])
    unknown = set(model) - set(MODEL_DEFAULTS) - set(MODEL_REQUIRED)
    if unknown:
        raise ConfigError(f"unknown [model] key(s) {sorted(unknown)}")
    for key in MODEL_REQUIRED:
        if key not in model:
            raise ConfigError(f"[model] {key} is required")
    for key, value in MODEL_DEFAULTS.items():
        model.setdefault(key, value)
    if model["model_type"] not in ("gfnet", "gfnet_encoder"):
        raise ConfigError(f"model_type = {model['model_type']!r}: expected 'gfnet' or 'gfnet_encoder'")
    layers = dict(raw.get("layers", {}))
    unknown_layers = set(layers) - {"mixing", "ffn"}
    if unknown_layers:
        raise ConfigError(f"unknown [layers] table(s) {sorted(unknown_layers)}; expected mixing, ffn")
    mixing = dict(layers.get("mixing", {}))
    ffn = dict(layers.get("ffn", {}))
    if set(mixing) - MIXING_KEYS:
        raise ConfigError(f"unknown [layers.mixing] key(s) {sorted(set(mixing) - MIXING_KEYS)}")
    if set(ffn) - FFN_KEYS:
        raise ConfigError(f"unknown [layers.ffn] key(s) {sorted(set(ffn) - FFN_KEYS)}")
    if mixing.get("type", "global_filter") != "global_filter":
        raise ConfigError(f"[layers.mixing] type = {mixing['type']!r}: expected 'global_filter'")
    _agree(mixing, "hidden_dim", model["hidden_dim"], "[layers.mixing]")
    _agree(mixing, "sequence_length", model["sequence_length"], "[layers.mixing]")
    _agree(mixing, "activation", model["filter_activation"], "[layers.mixing]")
    _agree(ffn, "hidden_dim", model["hidden_dim"], "[layers.ffn]")
    ffn_hidden = model["ffn_hidden_dim"] or 4 * model["hidden_dim"]
    _agree(ffn, "intermediate_dim", ffn_hidden, "[layers.ffn]")
    if mixing.get("fft_norm", "ortho") not in FFT_NORMS:
        raise ConfigError(f"[layers.mixing] fft_norm = {mixing['fft_norm']!r}: expected one of {FFT_NORMS}")
    if ffn.get("activation", "gelu") not in FFN_ACTIVATIONS:
        raise ConfigError(
            f"[layers.ffn] activation = {ffn['activation']!r}: expected one of {sorted(FFN_ACTIVATIONS)}"
        )
    if "filter_init_std" in mixing and not mixing["filter_init_std"] > 0:
        raise ConfigError(f"[layers.mixing] filter_init_std = {mixing['filter_init_std']}: must be > 0")
    return {"model": model, "layers": {"mixing": mixing, "ffn": ffn}}


def _agree(table: dict[str, Any], key: str, expected: Any, where: str) -> None:
    if key in table and table[key] != expected:
        raise ConfigError(f"{where} {key} = {table[key]!r} disagrees with the model's {expected!r}")


def build_model(config: dict[str, Any]) -> nn.Module:
    """Build the spectrans model (float32, train mode as constructed) for a normalised config."""
    m = config["model"]
    common = dict(
        hidden_dim=m["hidden_dim"],
        num_layers=m["num_layers"],
        max_sequence_length=m["sequence_length"],
        use_positional_encoding=m["use_positional_encoding"],
        positional_encoding_type=m["positional_encoding_type"],
        dropout=float(m["dropout"]),
        ffn_hidden_dim=m["ffn_hidden_dim"],
        norm_eps=float(m["norm_eps"]),
        filter_activation=m["filter_activation"],
        gradient_checkpointing=m["gradient_checkpointing"],
    )
    if m["model_type"] == "gfnet_encoder":
        model = GFNetEncoder(**common)
    else:
        model = GFNet(
            vocab_size=m["vocab_size"],
            num_classes=m["num_classes"],
            output_type=m["output_type"],
            **common,
        )
    apply_layer_extras(model, config["layers"])
    return model


def apply_layer_extras(model: nn.Module, layers: dict[str, dict[str, Any]]) -> None:
    """Apply [layers.mixing] / [layers.ffn] settings that GFNet's constructor does not take."""
    mixing, ffn = layers.get("mixing", {}), layers.get("ffn", {})
    for block in model.blocks:
        mix = block.mixing_layer
        if "fft_norm" in mixing:
            # spectrans stores the transform outside the module registry, the same way.
            object.__setattr__(mix, "fft1d", FFT1D(norm=mixing["fft_norm"]))
        if "dropout" in mixing:
            mix.dropout.p = float(mixing["dropout"])
        if "filter_init_std" in mixing:
            std = float(mixing["filter_init_std"])
            with torch.no_grad():
                mix.filter_real.normal_(0.0, std)
                mix.filter_imag.normal_(0.0, std)
        if "activation" in ffn:
            block.ffn.activation = FFN_ACTIVATIONS[ffn["activation"]]()
        if "dropout" in ffn:
            block.ffn.dropout.p = float(ffn["dropout"])
    # learnable_filters: spectrans' GlobalFilterMixing stores the flag but keeps the filters
    # as trainable Parameters; the reference does the same.


def randomise_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Draw every parameter broadly, so that parity tests see non-trivial values.

    filters ~ N(0, 1); LayerNorm weight = 1 + 0.5 N(0, 1); biases = 0.3 N(0, 1);
    Linear weight ~ U(-2/sqrt(fan_in), 2/sqrt(fan_in)) (twice PyTorch's default bound);
    embeddings (token and learned positions) ~ N(0, 1).
    """
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear):
                bound = 2.0 / math.sqrt(module.in_features)
                module.weight.copy_(_uniform(module.weight.shape, bound, generator))
                if module.bias is not None:
                    module.bias.copy_(0.3 * _normal(module.bias.shape, generator))
            elif isinstance(module, nn.LayerNorm):
                module.weight.copy_(1.0 + 0.5 * _normal(module.weight.shape, generator))
                module.bias.copy_(0.3 * _normal(module.bias.shape, generator))
            elif isinstance(module, nn.Embedding):
                module.weight.copy_(_normal(module.weight.shape, generator))
            elif hasattr(module, "filter_real") and hasattr(module, "filter_imag"):
                module.filter_real.copy_(_normal(module.filter_real.shape, generator))
                module.filter_imag.copy_(_normal(module.filter_imag.shape, generator))
        del name


def _normal(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float32)


def _uniform(shape: torch.Size, bound: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=generator, dtype=torch.float32) * 2.0 - 1.0) * bound


def to_float64(model: nn.Module) -> nn.Module:
    """A float64 copy of `model` whose fixed positional tables are recomputed in float64.

    `model.double()` alone would only widen spectrans' float32 tables (the sinusoidal `pe`
    buffer and the rotary cos/sin cache, which is not even a buffer), leaving ~1e-6 float32
    error in a float64 reference. Here the tables follow the formulas in float64:
    pe[p, 2i] = sin(p * exp(-2i ln(10000)/D)), pe[p, 2i+1] = cos(...);
    rotary inv_freq[i] = 1 / 10000^(2i/D), angle = p * inv_freq.
    """
    m64 = copy.deepcopy(model).double()
    pos = getattr(m64, "positional_encoding", None)
    if isinstance(pos, PositionalEncoding):
        rows, dim = pos.pe.shape[1], pos.pe.shape[2]
        pos.pe.copy_(sinusoidal_table_f64(rows, dim).unsqueeze(0))
    elif isinstance(pos, RotaryPositionalEncoding):
        dim = pos.hidden_dim
        inv = 1.0 / (pos.base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
        pos.inv_freq.copy_(inv)
        pos.cos_cached = None
        pos.sin_cached = None
        pos._build_cache(pos.max_sequence_length)
    return m64


def sinusoidal_table_f64(rows: int, dim: int) -> torch.Tensor:
    position = torch.arange(rows, dtype=torch.float64).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * -(math.log(10000.0) / dim))
    table = torch.zeros(rows, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table


def output_shape_kind(config: dict[str, Any]) -> str:
    """Which head the model has: 'classes' (B,C), 'scalar' (B,1), 'tokens' (B,N,C) or 'hidden'."""
    m = config["model"]
    if m["model_type"] == "gfnet_encoder":
        return "hidden"
    out = m["output_type"]
    if out == "classification":
        return "classes" if m["num_classes"] is not None else "hidden"
    if out == "regression":
        return "scalar"
    if out in ("sequence", "lm"):
        return "tokens"
    return "hidden"


def uses_embedding(config: dict[str, Any]) -> bool:
    m = config["model"]
    return m["model_type"] == "gfnet" and m["vocab_size"] is not None
