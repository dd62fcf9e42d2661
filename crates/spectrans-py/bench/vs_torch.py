"""Times a forward pass of spectrans_rs against PyTorch spectrans, from Python, on CPU.

    python crates/spectrans-py/bench/vs_torch.py [--threads 2] [--runs 15]

Needs torch and spectrans beside spectrans_rs. Builds spectrans' GFNet (hidden 256, 4 layers,
sequence 512, vocab 1000, 2 classes), converts its state_dict with `{k: v.numpy() ...}`, checks
that both give the same logits, then prints the median ms per forward of a batch of 8.
"""

import argparse
import statistics
import time

import numpy as np
import torch
from spectrans.models.gfnet import GFNet

import spectrans_rs


def median_ms(fs, runs, warmup=3):
    """Median, min and max ms of each function, the runs interleaved so that a change of the
    machine's load falls on both sides alike."""
    for _ in range(warmup):
        for f in fs:
            f()
    times = [[] for _ in fs]
    for _ in range(runs):
        for f, t in zip(fs, times):
            start = time.perf_counter()
            f()
            t.append((time.perf_counter() - start) * 1e3)
    return [(statistics.median(t), min(t), max(t)) for t in times]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--batch", type=int, default=8)
    a = p.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    config = dict(vocab_size=1000, hidden_dim=256, num_layers=4, num_classes=2)
    torch_model = GFNet(max_sequence_length=512, **config).eval()
    ours = spectrans_rs.GFNet.from_state_dict(
        dict(sequence_length=512, **config),
        {k: v.numpy() for k, v in torch_model.state_dict().items()},
        threads=a.threads,
    )
    ids = np.random.default_rng(0).integers(0, 1000, size=(a.batch, 512))
    ids_t = torch.from_numpy(ids)

    with torch.inference_mode():
        reference = torch_model(input_ids=ids_t).numpy()
    got = ours(input_ids=ids)
    err = float(np.max(np.abs(got - reference)))
    assert err < 1e-3, f"outputs differ by {err}"

    def run_torch():
        with torch.inference_mode():
            torch_model(input_ids=ids_t)

    t_ours, t_torch = median_ms([lambda: ours(input_ids=ids), run_torch], a.runs)
    print(f"batch {a.batch} x 512 tokens, hidden 256, 4 layers, {a.threads} threads, "
          f"torch {torch.__version__}; max |diff| {err:.2e}")
    print(f"spectrans_rs      median {t_ours[0]:8.1f} ms  (min {t_ours[1]:.1f}, max {t_ours[2]:.1f})")
    print(f"torch spectrans   median {t_torch[0]:8.1f} ms  (min {t_torch[1]:.1f}, max {t_torch[2]:.1f})")


if __name__ == "__main__":
    main()
