"""Round trips (save, state_dict, config dicts), input conversions and the module's surface."""

import json
import struct

import numpy as np
import pytest
import spectrans_rs

from conftest import case_dir, model_kwargs, read_safetensors


def test_save_round_trip_gives_identical_outputs(tmp_path, small_case):
    config, weights, inputs = small_case
    model = spectrans_rs.GFNet.from_files(config, weights)
    saved = tmp_path / "saved.safetensors"
    assert model.save(saved) is None
    again = spectrans_rs.GFNet.from_files(config, saved)
    np.testing.assert_array_equal(model(**model_kwargs(inputs)), again(**model_kwargs(inputs)))
    # PyTorch names, the parameters of the original file, f32 data.
    original = read_safetensors(weights)
    written = read_safetensors(saved)
    assert set(written) >= set(k for k in original if not k.startswith("positional_encoding."))
    for name, value in written.items():
        assert value.dtype == np.float32
        # The buffers (the sinusoidal table) are ours, computed; within 1e-4 of torch's.
        if name in original and name not in ("positional_encoding.pe", "positional_encoding.inv_freq"):
            np.testing.assert_array_equal(value, original[name].astype(np.float32))
    # No temporary file is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved.safetensors"]


def test_save_overwrites_atomically(tmp_path, small_case):
    config, weights, inputs = small_case
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"old contents")
    spectrans_rs.GFNet.from_files(config, weights).save(str(path))
    assert read_safetensors(path).keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_state_dict_round_trip(small_case):
    config, weights, inputs = small_case
    model = spectrans_rs.GFNet.from_files(config, weights)
    state = model.state_dict()
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in state.values())
    assert sum(v.size for k, v in state.items() if not k.startswith("positional_encoding.")) == model.num_parameters
    again = spectrans_rs.GFNet.from_state_dict(model.config, state)
    np.testing.assert_array_equal(model(**model_kwargs(inputs)), again(**model_kwargs(inputs)))


class TensorLike:
    """What a torch tensor offers NumPy: `__array__`."""

    def __init__(self, array):
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def test_state_dict_values_may_be_anything_with_array_and_any_float(small_case):
    config, weights, inputs = small_case
    model = spectrans_rs.GFNet.from_files(config, weights)
    state = {k: TensorLike(v.astype(np.float64)) for k, v in read_safetensors(weights).items()}
    again = spectrans_rs.GFNet.from_state_dict(config, state)
    np.testing.assert_array_equal(model(**model_kwargs(inputs)), again(**model_kwargs(inputs)))


def test_config_dicts_structured_and_flat():
    flat = {"hidden_dim": 8, "num_layers": 1, "sequence_length": 4, "vocab_size": 10,
            "num_classes": 3, "dropout": 0.0, "ffn_hidden_dim": None}
    model = spectrans_rs.GFNet(flat, seed=1)
    config = model.config
    assert config["model"]["hidden_dim"] == 8
    assert config["model"]["num_classes"] == 3
    assert config["layers"]["mixing"]["fft_norm"] == "ortho"
    same = spectrans_rs.GFNet(config, seed=1)
    x = np.arange(8).reshape(2, 4) % 10
    np.testing.assert_array_equal(model(input_ids=x), same(input_ids=x))
    assert model(input_ids=x).shape == (2, 3)
    structured = {"model": dict(flat), "layers": {"mixing": {"fft_norm": "forward"}}}
    assert spectrans_rs.GFNet(structured).config["layers"]["mixing"]["fft_norm"] == "forward"
    np_scalars = {"hidden_dim": np.int64(8), "num_layers": np.int32(1), "sequence_length": 4,
                  "dropout": np.float64(0.0)}
    assert spectrans_rs.GFNet(np_scalars).config["model"]["hidden_dim"] == 8


def test_seeds_make_models(small_case):
    config, _, _ = small_case
    a, b, c = (spectrans_rs.GFNet(config, seed=s) for s in (0, 0, 1))
    x = np.zeros((1, 16), dtype=np.int64)
    np.testing.assert_array_equal(a(input_ids=x), b(input_ids=x))
    assert not np.array_equal(a(input_ids=x), c(input_ids=x))


def test_input_dtypes_are_converted():
    model = spectrans_rs.GFNet({"hidden_dim": 8, "num_layers": 1, "sequence_length": 6,
                                "vocab_size": 20, "output_type": "regression"}, seed=2)
    ids = np.random.default_rng(0).integers(0, 20, size=(3, 6))
    reference = model(input_ids=ids.astype(np.int64))
    np.testing.assert_array_equal(model(input_ids=ids.astype(np.int32)), reference)
    np.testing.assert_array_equal(model(input_ids=ids.astype(np.uint8)), reference)
    np.testing.assert_array_equal(model(input_ids=ids.tolist()), reference)
    np.testing.assert_array_equal(model(ids), reference)  # positional, as in spectrans
    # Non-contiguous views are fine.
    wide = np.zeros((3, 12), dtype=np.int64)
    wide[:, ::2] = ids
    np.testing.assert_array_equal(model(input_ids=wide[:, ::2]), reference)

    mask = np.ones((3, 6), dtype=bool)
    mask[0, 4:] = False
    mask[2, 1:] = False
    masked = model(input_ids=ids, attention_mask=mask)
    assert not np.array_equal(masked, reference)
    for m in (mask.astype(np.int64), mask.astype(np.int32), mask.astype(np.float32),
              mask.astype(np.float64) * 0.5, mask.tolist()):
        np.testing.assert_array_equal(model(input_ids=ids, attention_mask=m), masked)
    assert masked.dtype == np.float32 and masked.shape == (3, 1)


def test_embeds_float64_is_converted_and_preferred_over_ids():
    d = case_dir("inputs_embeds")
    model = spectrans_rs.GFNet.from_files(d / "config.toml", d / "weights.safetensors")
    embeds = read_safetensors(d / "inputs.safetensors")["inputs_embeds"]
    reference = model(inputs_embeds=embeds)
    np.testing.assert_array_equal(model(inputs_embeds=embeds.astype(np.float64)), reference)
    np.testing.assert_array_equal(
        model(input_ids=np.zeros(embeds.shape[:2], dtype=np.int64), inputs_embeds=embeds), reference
    )
    assert reference.flags["C_CONTIGUOUS"] and reference.flags["WRITEABLE"]


def test_output_shapes_follow_the_head():
    base = {"hidden_dim": 8, "num_layers": 1, "sequence_length": 5, "vocab_size": 11}
    ids = np.zeros((2, 5), dtype=np.int64)
    assert spectrans_rs.GFNet(dict(base, num_classes=3))(input_ids=ids).shape == (2, 3)
    assert spectrans_rs.GFNet(dict(base, output_type="regression"))(input_ids=ids).shape == (2, 1)
    assert spectrans_rs.GFNet(dict(base, output_type="sequence"))(input_ids=ids).shape == (2, 5, 11)
    assert spectrans_rs.GFNet(dict(base, output_type="none"))(input_ids=ids).shape == (2, 5, 8)
    encoder = spectrans_rs.GFNet({"model_type": "gfnet_encoder", "hidden_dim": 8, "num_layers": 1,
                                  "sequence_length": 5})
    assert encoder(inputs_embeds=np.zeros((2, 5, 8))).shape == (2, 5, 8)
    with pytest.raises(ValueError, match="no embedding layer"):
        encoder(input_ids=ids)


def test_num_parameters_and_repr(small_case):
    config, weights, _ = small_case
    model = spectrans_rs.GFNet.from_files(config, weights)
    state = read_safetensors(weights)
    assert model.num_parameters == sum(v.size for k, v in state.items() if k != "positional_encoding.pe")
    assert "GFNet(gfnet" in repr(model)


def test_docstrings_for_help():
    assert "NumPy" in spectrans_rs.__doc__
    for obj in (spectrans_rs.GFNet, spectrans_rs.GFNet.from_files, spectrans_rs.GFNet.from_state_dict,
                spectrans_rs.GFNet.forward, spectrans_rs.GFNet.save, spectrans_rs.validate,
                spectrans_rs.set_threads):
        assert obj.__doc__ and len(obj.__doc__) > 40, obj
    assert "input_ids" in spectrans_rs.GFNet.forward.__doc__
    assert isinstance(spectrans_rs.__version__, str)


def test_object_arrays_of_numbers_are_accepted():
    """pandas and Ray columns of rows arrive as object arrays."""
    model = spectrans_rs.GFNet({"hidden_dim": 8, "num_layers": 1, "sequence_length": 6,
                                "vocab_size": 20, "num_classes": 2}, seed=2)
    ids = np.random.default_rng(0).integers(0, 20, size=(3, 6))
    reference = model(input_ids=ids)
    rows = np.empty(3, dtype=object)
    for i in range(3):
        rows[i] = ids[i]
    np.testing.assert_array_equal(model(input_ids=np.stack(rows)), reference)
    np.testing.assert_array_equal(model(input_ids=rows), reference)
    np.testing.assert_array_equal(model(input_ids=ids.astype(object)), reference)
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = [1, 2, 3], [1, 2]
    with pytest.raises(ValueError, match="input_ids: dtype object holds values that are not numbers"):
        model(input_ids=ragged)
    with pytest.raises(ValueError, match=r"input_ids: dtype object \(holding <U1\) is not accepted|input_ids: dtype object \(holding str"):
        model(input_ids=np.array([["a"] * 6], dtype=object))


def test_precision_is_chosen_at_load_and_stays_close_to_f32(small_case):
    config, weights, inputs = small_case
    exact = spectrans_rs.GFNet.from_files(config, weights)
    assert exact.precision == "f32"
    reference = exact(**model_kwargs(inputs))
    scale = float(np.abs(reference).max())
    # docs/precision.md's bounds on the forward fixtures: 2e-2 (bf16), 6e-2 (int8), relative.
    for precision, bound in (("bf16", 2e-2), ("int8", 6e-2)):
        model = spectrans_rs.GFNet.from_files(config, weights, precision=precision)
        assert model.precision == precision
        out = model(**model_kwargs(inputs))
        assert out.shape == reference.shape and out.dtype == np.float32
        assert np.abs(out - reference).max() <= bound * scale
        assert not np.array_equal(out, reference)
    state = exact.state_dict()
    again = spectrans_rs.GFNet.from_state_dict(config, state, precision="int8")
    assert again.precision == "int8"
    assert spectrans_rs.GFNet(config, seed=1, precision="bf16").precision == "bf16"


def test_an_unknown_precision_is_a_value_error_naming_the_choices(small_case):
    config, weights, _ = small_case
    with pytest.raises(ValueError, match="precision.*f32.*bf16.*int8"):
        spectrans_rs.GFNet.from_files(config, weights, precision="fp8")
    with pytest.raises(ValueError, match="precision"):
        spectrans_rs.GFNet(config, precision="F32 ")
