"""Bad files, configs, weights and inputs raise Python exceptions that name the problem."""

import numpy as np
import pytest
import spectrans_rs

from conftest import read_safetensors

CONFIG = """[model]
hidden_dim = 16
num_layers = 2
sequence_length = 16
vocab_size = 50
num_classes = 5
"""


def test_missing_config_file_is_an_oserror_naming_it(tmp_path, small_case):
    _, weights, _ = small_case
    missing = tmp_path / "nope.toml"
    with pytest.raises(OSError) as e:
        spectrans_rs.GFNet.from_files(missing, weights)
    assert isinstance(e.value, FileNotFoundError)
    assert str(missing) in str(e.value)


def test_missing_weights_file_is_an_oserror_naming_it(tmp_path, small_case):
    config, _, _ = small_case
    missing = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        spectrans_rs.GFNet.from_files(config, missing)


def test_bad_config_is_a_valueerror_naming_every_field(tmp_path, small_case):
    _, weights, _ = small_case
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nhiden_dim = 16\nnum_layers = 0\nsequence_length = 16\n")
    with pytest.raises(ValueError) as e:
        spectrans_rs.GFNet.from_files(path, weights)
    text = str(e.value)
    assert "model.hiden_dim" in text and "did you mean `hidden_dim`" in text
    assert "model.hidden_dim: missing" in text
    assert "model.num_layers: got 0" in text


def test_toml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "syntax.toml"
    path.write_text("[model]\nhidden_dim 16\n")
    with pytest.raises(ValueError, match="line 2, column"):
        spectrans_rs.GFNet(path)


def test_bad_config_dict_names_the_field():
    with pytest.raises(ValueError, match=r"model.dropout: got 1.5"):
        spectrans_rs.GFNet({"hidden_dim": 8, "num_layers": 1, "sequence_length": 4, "dropout": 1.5})
    with pytest.raises(ValueError, match=r"model.hidden_dim: a list|model.hidden_dim"):
        spectrans_rs.GFNet({"model": {"hidden_dim": [8], "num_layers": 1, "sequence_length": 4}})


def test_config_of_the_wrong_type_is_a_typeerror():
    with pytest.raises(TypeError, match="config: expected a path"):
        spectrans_rs.GFNet(42)


def test_bad_state_dict_names_every_problem_at_once(small_case):
    config, weights, _ = small_case
    state = read_safetensors(weights)
    del state["final_norm.weight"]
    state["blocks.0.norm1.bias"] = np.zeros(3, dtype=np.float32)
    state["embedding.weight"] = state["embedding.weight"].copy()
    state["embedding.weight"][1, 2] = np.nan
    state["blocks.1.norm2.weight"] = np.ones(16, dtype=np.int64)
    state["not.a.parameter"] = np.zeros(2, dtype=np.float32)
    with pytest.raises(ValueError) as e:
        spectrans_rs.GFNet.from_state_dict(config, state)
    text = str(e.value)
    for needle in [
        "missing tensor `final_norm.weight` of shape [16]",
        "tensor `blocks.0.norm1.bias`: expected shape [16], found [3]",
        "tensor `embedding.weight` holds a non-finite value at flat index 18",
        "tensor `blocks.1.norm2.weight`: dtype int64 is not accepted",
        "unexpected tensor `not.a.parameter`",
    ]:
        assert needle in text, f"{needle!r} not in {text!r}"


def test_state_dict_must_be_a_mapping_of_str(small_case):
    config, _, _ = small_case
    with pytest.raises(TypeError, match="state_dict: expected a mapping"):
        spectrans_rs.GFNet.from_state_dict(config, [1, 2])
    with pytest.raises(ValueError, match="keys must be str"):
        spectrans_rs.GFNet.from_state_dict(config, {1: np.zeros(2)})


def test_bad_weights_file_names_every_problem(tmp_path, small_case):
    config, weights, _ = small_case
    model = spectrans_rs.GFNet.from_files(config, weights)
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.replace("num_layers = 2", "num_layers = 1"))
    saved = tmp_path / "w.safetensors"
    model.save(saved)
    with pytest.raises(ValueError) as e:
        spectrans_rs.GFNet.from_files(CONFIG_WITH_3_LAYERS(tmp_path), saved)
    assert "missing tensor `blocks.2." in str(e.value)
    with pytest.raises(ValueError) as e:
        spectrans_rs.GFNet.from_files(other, saved)
    assert "unexpected tensor `blocks.1." in str(e.value)
    assert str(saved) in str(e.value)


def CONFIG_WITH_3_LAYERS(tmp_path):
    path = tmp_path / "three.toml"
    path.write_text(CONFIG.replace("num_layers = 2", "num_layers = 3"))
    return path


def test_corrupt_weights_file_is_a_valueerror(tmp_path, small_case):
    config, _, _ = small_case
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        spectrans_rs.GFNet.from_files(config, corrupt)


def test_token_id_out_of_range_is_a_valueerror(small_case):
    config, weights, _ = small_case
    model = spectrans_rs.GFNet.from_files(config, weights)
    ids = np.zeros((2, 16), dtype=np.int64)
    ids[1, 3] = 50
    with pytest.raises(ValueError, match=r"token id 50 at position \(1, 3\) is out of range"):
        model(input_ids=ids)
    with pytest.raises(ValueError, match="out of range"):
        model(input_ids=np.full((1, 16), -1))


def test_bad_inputs_are_valueerrors_naming_them(small_case):
    config, weights, _ = small_case
    model = spectrans_rs.GFNet.from_files(config, weights)
    ids = np.zeros((2, 16), dtype=np.int64)
    with pytest.raises(ValueError, match="no input"):
        model()
    with pytest.raises(ValueError, match=r"input_ids: expected shape \(B, N\), found \[16\]"):
        model(input_ids=np.zeros(16, dtype=np.int64))
    with pytest.raises(ValueError, match="input_ids: dtype float32 is not accepted"):
        model(input_ids=ids.astype(np.float32))
    with pytest.raises(ValueError, match=r"inputs_embeds: expected shape \(B, N, D\)"):
        model(inputs_embeds=np.zeros((2, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="inputs_embeds"):
        model(inputs_embeds=np.zeros((2, 16, 7), dtype=np.float32))
    embeds = np.zeros((2, 16, 16), dtype=np.float32)
    embeds[0, 1, 2] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        model(inputs_embeds=embeds)
    with pytest.raises(ValueError, match="attention_mask"):
        model(input_ids=ids, attention_mask=np.ones((2, 15)))
    with pytest.raises(ValueError, match="attention_mask: contains NaN"):
        model(input_ids=ids, attention_mask=np.full((2, 16), np.nan))
    with pytest.raises(ValueError, match="input_ids: cannot be read|input_ids: dtype"):
        model(input_ids=[["a", "b"]])


def test_all_zero_mask_row_is_a_valueerror():
    config = {"hidden_dim": 8, "num_layers": 1, "sequence_length": 4, "vocab_size": 10,
              "output_type": "regression"}
    model = spectrans_rs.GFNet(config)
    mask = np.ones((2, 4), dtype=bool)
    mask[1] = False
    with pytest.raises(ValueError, match="attention_mask row 1 is all zeros"):
        model(input_ids=np.zeros((2, 4), dtype=np.int64), attention_mask=mask)


def test_sequence_longer_than_the_config_is_a_valueerror(small_case):
    config, weights, _ = small_case
    model = spectrans_rs.GFNet.from_files(config, weights)
    with pytest.raises(ValueError):
        model(input_ids=np.zeros((1, 17), dtype=np.int64))


def test_save_into_a_missing_folder_is_an_oserror(tmp_path, small_case):
    config, weights, _ = small_case
    model = spectrans_rs.GFNet.from_files(config, weights)
    target = tmp_path / "no" / "such" / "dir" / "w.safetensors"
    with pytest.raises(OSError) as e:
        model.save(target)
    assert "w.safetensors" in str(e.value)


def test_threads_zero_is_a_valueerror(small_case):
    config, weights, _ = small_case
    with pytest.raises(ValueError, match="threads: got 0"):
        spectrans_rs.GFNet.from_files(config, weights, threads=0)
    with pytest.raises(ValueError, match="threads: got 0"):
        spectrans_rs.set_threads(0)


def test_validate_lists_every_problem(tmp_path, small_case):
    config, _, _ = small_case
    assert spectrans_rs.validate(config) == []
    assert spectrans_rs.validate(str(config)) == []
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nhidden_dim = 0\nnum_layers = 1\ndropout = 2.0\n")
    problems = spectrans_rs.validate(bad)
    assert any(p.startswith("model.hidden_dim: got 0") for p in problems), problems
    assert any(p.startswith("model.dropout:") for p in problems), problems
    assert any(p.startswith("model.sequence_length: missing") for p in problems), problems
    assert spectrans_rs.validate({"hidden_dim": 8, "num_layers": 1, "sequence_length": 4}) == []
    syntax = tmp_path / "syntax.toml"
    syntax.write_text("[model\n")
    [problem] = spectrans_rs.validate(syntax)
    assert "line 1" in problem
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        spectrans_rs.validate(tmp_path / "missing.toml")


@pytest.mark.parametrize("released", [False, True])
def test_a_rust_panic_becomes_a_runtimeerror(released):
    with pytest.raises(RuntimeError, match="internal error in _panic_for_tests .*deliberate"):
        spectrans_rs._panic_for_tests(released=released)


def test_a_batch_over_the_memory_budget_is_a_memoryerror(monkeypatch):
    model = spectrans_rs.GFNet({"hidden_dim": 64, "num_layers": 1, "sequence_length": 512,
                                "vocab_size": 10, "num_classes": 2})
    monkeypatch.setenv("SPECTRANS_MAX_MEMORY", "4M")
    with pytest.raises(MemoryError, match=r"a forward pass of 64 x 512 tokens needs .*SPECTRANS_MAX_MEMORY"):
        model(input_ids=np.zeros((64, 512), dtype=np.int64))
    monkeypatch.setenv("SPECTRANS_MAX_MEMORY", "lots")
    with pytest.raises(ValueError, match="SPECTRANS_MAX_MEMORY"):
        model(input_ids=np.zeros((1, 512), dtype=np.int64))
    monkeypatch.delenv("SPECTRANS_MAX_MEMORY")
    assert model(input_ids=np.zeros((1, 512), dtype=np.int64)).shape == (1, 2)
