"""Time the spectrans (PyTorch) model for side-by-side benchmarks; prints ONE JSON line.

usage: bench_torch.py --config C.toml --batch B [--seq-len N] [--iters K] [--warmup W]
                      [--threads T] [--train] [--vocab-size V]

Random weights. Forward: eval mode under torch.inference_mode. --train: model.train() and one
full AdamW step (zero_grad, forward, loss, backward, step) per iteration, with cross-entropy on
random targets (mse on random targets when the head has no classes). Inputs: random input_ids
(B, N) when the model has an embedding (vocab_size from the config, or --vocab-size), random
inputs_embeds (B, N, D) otherwise. N defaults to the config's sequence_length.
Output: {"impl": "pytorch", "forward_ms" | "train_step_ms": median, "min_ms", "iters", "threads",
"batch", "seq_len", "hidden_dim", "num_layers", "peak_rss_mb", ...}
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--seq-len", type=int)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--vocab-size", type=int, help="set or override the config's vocab_size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.batch < 1 or args.iters < 1 or args.warmup < 0:
        parser.error("--batch and --iters must be >= 1, --warmup >= 0")

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = reference.load_config(args.config)
    if args.vocab_size is not None:
        config["model"]["vocab_size"] = args.vocab_size
    m = config["model"]
    seq_len = args.seq_len or m["sequence_length"]
    model = reference.build_model(config)

    if reference.uses_embedding(config):
        inputs = {"input_ids": torch.randint(0, m["vocab_size"], (args.batch, seq_len))}
    else:
        inputs = {"inputs_embeds": torch.randn(args.batch, seq_len, m["hidden_dim"])}

    if args.train:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        with torch.no_grad():
            shape = model(**inputs).shape
        has_classes = reference.output_shape_kind(config) in ("classes", "tokens")
        if has_classes:
            targets = torch.randint(0, shape[-1], shape[:-1])
        else:
            targets = torch.randn(shape)
        loss_name = "ce" if has_classes else "mse"

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            out = model(**inputs)
            if has_classes:
                loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), targets.reshape(-1))
            else:
                loss = F.mse_loss(out, targets)
            loss.backward()
            optimizer.step()

        times = timed(step, args.warmup, args.iters)
        key = "train_step_ms"
    else:
        model.eval()
        loss_name = None

        def step() -> None:
            with torch.inference_mode():
                model(**inputs)

        times = timed(step, args.warmup, args.iters)
        key = "forward_ms"

    result = {
        "impl": "pytorch",
        key: statistics.median(times),
        "min_ms": min(times),
        "iters": args.iters,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "seq_len": seq_len,
        "hidden_dim": m["hidden_dim"],
        "num_layers": m["num_layers"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_version": torch.__version__,
    }
    if loss_name is not None:
        result["loss"] = loss_name
    print(json.dumps(result))
    return 0


def timed(step, warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return times


if __name__ == "__main__":
    sys.exit(main())
