"""Every forward fixture gives what PyTorch spectrans gave (within the Rust parity test's
bound) and exactly what our `spectrans forward` CLI writes."""

import os
import subprocess

import numpy as np
import pytest
import spectrans_rs

from conftest import case_dir, forward_cases, model_kwargs, read_safetensors, spectrans_binary

CASES = forward_cases()


def test_there_are_fixtures():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case,entry", CASES, ids=[c for c, _ in CASES])
def test_forward_matches_pytorch(case, entry):
    d = case_dir(case)
    model = spectrans_rs.GFNet.from_files(d / "config.toml", d / "weights.safetensors")
    inputs = read_safetensors(d / "inputs.safetensors")
    expected = read_safetensors(d / "expected.safetensors")
    r64, r32 = expected["output_f64"], expected["output_f32"].astype(np.float64)

    out = model(**model_kwargs(inputs))

    assert out.dtype == np.float32
    assert out.shape == r64.shape
    # The bound of crates/spectrans-train/tests/it/parity.rs: 20x torch's own f32 error, at
    # least 2e-5 relative to the output's scale.
    torch_f32 = float(np.max(np.abs(r32 - r64))) if r64.size else 0.0
    scale = max(float(np.max(np.abs(r64))) if r64.size else 0.0, 1.0)
    bound = max(20.0 * torch_f32, 2e-5 * scale)
    err = float(np.max(np.abs(out.astype(np.float64) - r64))) if r64.size else 0.0
    assert err <= bound, f"{case}: error {err:.3e} > bound {bound:.1e}"


@pytest.mark.parametrize("case,entry", CASES, ids=[c for c, _ in CASES])
def test_from_state_dict_of_the_weights_file_gives_the_same_output(case, entry):
    d = case_dir(case)
    inputs = read_safetensors(d / "inputs.safetensors")
    from_files = spectrans_rs.GFNet.from_files(d / "config.toml", d / "weights.safetensors")
    state_dict = read_safetensors(d / "weights.safetensors")
    from_dict = spectrans_rs.GFNet.from_state_dict(str(d / "config.toml"), state_dict)
    np.testing.assert_array_equal(from_dict(**model_kwargs(inputs)), from_files(**model_kwargs(inputs)))


@pytest.mark.skipif(spectrans_binary() is None, reason="no release spectrans binary (cargo build --release -p spectrans-cli)")
@pytest.mark.parametrize("case,entry", CASES, ids=[c for c, _ in CASES])
def test_forward_equals_the_cli(case, entry, tmp_path):
    d = case_dir(case)
    out_path = tmp_path / "output.safetensors"
    model = spectrans_rs.GFNet.from_files(d / "config.toml", d / "weights.safetensors")
    env = dict(os.environ, RAYON_NUM_THREADS=str(model.threads))
    subprocess.run(
        [
            spectrans_binary(),
            "forward",
            "--config", str(d / "config.toml"),
            "--weights", str(d / "weights.safetensors"),
            "--input", str(d / "inputs.safetensors"),
            "--output", str(out_path),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    cli = read_safetensors(out_path)["output"]
    ours = model(**model_kwargs(read_safetensors(d / "inputs.safetensors")))
    assert ours.shape == cli.shape
    np.testing.assert_array_equal(ours, cli)
