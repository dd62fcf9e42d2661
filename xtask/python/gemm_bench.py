"""Time single-precision GEMM the way a Linear layer does it: y = x @ W.T; one JSON line a shape.

usage: gemm_bench.py --backend torch|numpy --threads T --shapes '[[m,k,n], ...]'
                     [--iters K] [--warmup W] [--seed S]

x is (m, k), W is (n, k), both float32 drawn from N(0, 1); y is (m, n).
  torch: torch.set_num_threads(T); under torch.inference_mode, times both torch.matmul(x, w.t())
         and F.linear(x, w) and reports the faster (by median) as "op" ("matmul" or "linear").
  numpy: threadpoolctl.threadpool_limits(limits=T); times np.matmul(x, w.T, out=buf) into a
         preallocated buffer ("op": "matmul_out"). The environment (OPENBLAS_CORETYPE,
         OPENBLAS_L2_SIZE, ...) is left exactly as the caller set it.
Output per shape: {"backend", "m", "k", "n", "threads", "median_ms", "min_ms", "gflops"
(2*m*k*n / median seconds / 1e9), "blas", "op", "iters", "warmup"}. "blas" names the BLAS
that does the work: for numpy, from threadpoolctl.threadpool_info() (internal_api, version,
architecture or corretype); for torch, its BLAS / MKL build setting.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time


def timed(fn, warmup: int, iters: int) -> list[float]:
    """Run fn warmup times, then iters timed times; milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def bench_torch(shapes, threads: int, warmup: int, iters: int, seed: int):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    blas = torch_blas()
    for m, k, n in shapes:
        x = torch.randn(m, k, dtype=torch.float32)
        w = torch.randn(n, k, dtype=torch.float32)
        with torch.inference_mode():
            candidates = {
                "matmul": lambda: torch.matmul(x, w.t()),
                "linear": lambda: F.linear(x, w),
            }
            results = {op: timed(fn, warmup, iters) for op, fn in candidates.items()}
        op = min(results, key=lambda name: statistics.median(results[name]))
        yield {"m": m, "k": k, "n": n, "threads": torch.get_num_threads(), "op": op, "blas": blas}, results[op]


def torch_blas() -> str:
    """The BLAS torch was built with, from its build configuration."""
    import torch

    # e.g. "  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, ..."
    match = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    blas = match.group(1) if match else "?"
    return f"torch {torch.__version__} BLAS_INFO={blas} mkl={torch.backends.mkl.is_available()}"


def bench_numpy(shapes, threads: int, warmup: int, iters: int, seed: int):
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    rng = np.random.default_rng(seed)
    blas = numpy_blas()
    with threadpool_limits(limits=threads):
        for m, k, n in shapes:
            x = rng.standard_normal((m, k), dtype=np.float32)
            w = rng.standard_normal((n, k), dtype=np.float32)
            wt = w.T  # a transposed view, as x @ W.T sees it (no copy)
            buf = np.empty((m, n), dtype=np.float32)
            times = timed(lambda: np.matmul(x, wt, out=buf), warmup, iters)
            # The thread count the BLAS actually ran with.
            used = [i.get("num_threads") for i in threadpool_info() if i.get("user_api") == "blas"]
            yield {
                "m": m,
                "k": k,
                "n": n,
                "threads": used[0] if used else threads,
                "op": "matmul_out",
                "blas": blas,
            }, times


def numpy_blas() -> str:
    """internal_api, version and architecture (or corretype) of each BLAS threadpoolctl sees."""
    import numpy  # noqa: F401 - load numpy's BLAS before asking threadpoolctl
    from threadpoolctl import threadpool_info

    parts = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        arch = info.get("architecture") or info.get("corretype") or "?"
        parts.append(f"{info.get('internal_api')} {info.get('version')} {arch}")
    return "; ".join(parts) or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("torch", "numpy"), required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--shapes", required=True, help="JSON list of [m, k, n]")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        shapes = [tuple(int(v) for v in s) for s in json.loads(args.shapes)]
    except (ValueError, TypeError) as exc:
        parser.error(f"--shapes: expected a JSON list of [m, k, n] lists ({exc})")
    if not shapes or any(len(s) != 3 or min(s) < 1 for s in shapes):
        parser.error("--shapes: each shape must be [m, k, n] with positive sizes")
    if args.threads < 1 or args.iters < 1 or args.warmup < 0:
        parser.error("--threads and --iters must be >= 1, --warmup >= 0")

    bench = bench_torch if args.backend == "torch" else bench_numpy
    for fields, times in bench(shapes, args.threads, args.warmup, args.iters, args.seed):
        median_ms = statistics.median(times)
        m, k, n = fields["m"], fields["k"], fields["n"]
        line = {
            "backend": args.backend,
            "m": m,
            "k": k,
            "n": n,
            "threads": fields["threads"],
            "median_ms": median_ms,
            "min_ms": min(times),
            "gflops": 2.0 * m * k * n / (median_ms / 1e3) / 1e9,
            "blas": fields["blas"],
            "op": fields["op"],
            "iters": args.iters,
            "warmup": args.warmup,
        }
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
