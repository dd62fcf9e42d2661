"""A PyTorch serving baseline for `cargo xtask bench serve`: FastAPI + uvicorn + an asyncio batcher.

usage: serve_torch.py --config C.toml --weights W.safetensors [--host 127.0.0.1] [--port 0]
                      [--threads N] [--max-batch 32] [--max-wait-ms 2] [--max-queue 32]
                      [--variant {rfft-compile,rfft,spectrans}]

The model: spectrans' GFNet built from our TOML (reference.build_model) with the weights of
the safetensors file `spectrans serve` loads, in eval mode. The default variant is the fastest
one of bench_torch.py: every GlobalFilterMixing rewritten with the real FFT (patch_rfft) under
torch.compile (inductor, CPU). When compiling fails the server falls back to the eager rfft
model and says so on stderr and in GET /info ("variant", "compile_error").

The compiled model is warmed up before the server listens: the batch axis is marked dynamic
and batches of 1, 2 and 3 sequences of the config's sequence_length run once, so that the
load test does not time a compile (another sequence length compiles on its first request).

HTTP contract (the one of `spectrans serve`, JSON in and out):
  GET  /health   200 {"status": "ok"} (the model is loaded before the socket listens).
  GET  /info     200 {"variant", "compile_error", "compile_s", "torch_version", "threads",
                 "max_batch", "max_wait_ms", "max_queue", "batching", ...}.
  POST /predict  {"input_ids": [ids]} or {"input_ids": [[ids], ...]} (lengths may differ),
                 optional "attention_mask" of the same shape; 200 {"outputs": [...],
                 "labels": [...]} (labels for classification heads), one per sequence in order.
                 400 malformed JSON or wrong types; 422 an id outside [0, vocab_size), an empty
                 or too long sequence, a mask of another shape; 429 with Retry-After when the
                 bounded queue has no room for the request's sequences.

Batching: one asyncio task takes the first queued sequence, then waits up to --max-wait-ms for
more (less when a whole batch is queued), up to --max-batch sequences. Only sequences of EQUAL LENGTH share a forward (no padding:
the global filter mixes every position, so a pad would change the answer); a batch of mixed
lengths runs as one forward per length. Forwards run one at a time on a worker thread, so the
event loop keeps answering (429s included) while the model runs.

Once listening it prints `listening on http://HOST:PORT` on stderr (port 0 picks a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402
from bench_torch import error_text, patch_rfft  # noqa: E402

VARIANTS = ("rfft-compile", "rfft", "spectrans")


class RequestError(Exception):
    """A request the server rejects: HTTP status and a message naming what was expected."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def load_model(config_path: str, weights_path: str) -> tuple[torch.nn.Module, dict]:
    """The spectrans model of the config with the safetensors weights, in eval mode."""
    config = reference.load_config(config_path)
    model = reference.build_model(config)
    state = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in load_file(weights_path).items()}
    own = model.state_dict()
    params = {name for name, _ in model.named_parameters()}
    problems = [f"missing parameter {n}" for n in sorted(params - set(state))]
    problems += [f"unexpected key {n}" for n in sorted(set(state) - set(own))]
    problems += [
        f"{n}: shape {tuple(state[n].shape)}, expected {tuple(own[n].shape)}"
        for n in sorted(set(state) & set(own))
        if tuple(state[n].shape) != tuple(own[n].shape)
    ]
    if problems:
        raise SystemExit(f"error: {weights_path} does not fit {config_path}: " + "; ".join(problems))
    missing_buffers = set(own) - set(state)
    model.load_state_dict(state, strict=not missing_buffers)
    model.eval()
    return model, config


class Engine:
    """The model (compiled or eager) and its forward on a list of equal-length sequences."""

    def __init__(self, model: torch.nn.Module, config: dict, variant: str) -> None:
        m = config["model"]
        self.vocab_size = m["vocab_size"]
        self.sequence_length = m["sequence_length"]
        self.classification = reference.output_shape_kind(config) in ("classes", "tokens")
        self.variant = variant
        self.compile_error = None
        self.compile_s = None
        if variant in ("rfft", "rfft-compile"):
            patch_rfft(model)
        self.model = model
        self.run_model = model
        if variant == "rfft-compile":
            started = time.perf_counter()
            try:
                self.run_model = torch.compile(model)
                self.warm_up()
                self.compile_s = time.perf_counter() - started
            except Exception as exc:  # noqa: BLE001 - any compile failure falls back to eager
                self.compile_error = error_text(exc)
                self.variant = "rfft (eager: torch.compile failed)"
                self.run_model = model
                print(f"serve_torch: torch.compile failed, serving eager rfft: {self.compile_error}", file=sys.stderr)

    def warm_up(self) -> None:
        n = self.sequence_length
        for batch in (2, 3, 1):
            ids = torch.randint(0, self.vocab_size or 1, (batch, n))
            if batch > 1:
                torch._dynamo.mark_dynamic(ids, 0)
            self.forward(ids, None)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        kwargs = {"input_ids": ids}
        if mask is not None:
            kwargs["attention_mask"] = mask
        with torch.no_grad():
            return self.run_model(**kwargs)

    def run_batch(self, seqs: list[list[int]], masks: list[list[int] | None]) -> list[tuple[list, int | None]]:
        """Forward of equal-length sequences; (output, label) per sequence."""
        ids = torch.tensor(seqs, dtype=torch.int64)
        mask = None
        if any(m is not None for m in masks):
            mask = torch.tensor([m if m is not None else [1] * len(s) for s, m in zip(seqs, masks)], dtype=torch.int64)
        out = self.forward(ids, mask)
        rows = out.tolist()
        labels = out.argmax(dim=-1).tolist() if self.classification else [None] * len(rows)
        return list(zip(rows, labels))


def parse_request(body: bytes, engine: Engine) -> tuple[list[list[int]], list[list[int] | None]]:
    """The sequences and masks of a /predict body, or a RequestError (400 or 422)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc}); expected {{\"input_ids\": [...]}}") from None
    if not isinstance(doc, dict) or "input_ids" not in doc:
        raise RequestError(400, "expected a JSON object with \"input_ids\": a list of token ids or of lists of them")
    ids = doc["input_ids"]
    single = isinstance(ids, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in ids)
    seqs = [ids] if single else ids
    if not isinstance(seqs, list) or not seqs:
        raise RequestError(400, "\"input_ids\" must be a non-empty list of integers or of lists of integers")
    for i, seq in enumerate(seqs):
        if not isinstance(seq, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in seq):
            raise RequestError(400, f"input_ids[{i}] must be a list of integers")
        if not seq:
            raise RequestError(422, f"sequence {i} is empty; expected 1 to {engine.sequence_length} tokens")
        if len(seq) > engine.sequence_length:
            raise RequestError(422, f"sequence {i} has {len(seq)} tokens; the model accepts at most {engine.sequence_length}")
        if engine.vocab_size is not None:
            bad = next((t for t in seq if t < 0 or t >= engine.vocab_size), None)
            if bad is not None:
                raise RequestError(422, f"token id {bad} in sequence {i} is outside [0, {engine.vocab_size})")
    masks: list[list[int] | None] = [None] * len(seqs)
    if doc.get("attention_mask") is not None:
        raw = doc["attention_mask"]
        mseqs = [raw] if single else raw
        if not isinstance(mseqs, list) or len(mseqs) != len(seqs):
            raise RequestError(422, "attention_mask must have the shape of input_ids")
        for i, (seq, m) in enumerate(zip(seqs, mseqs)):
            if not isinstance(m, list) or len(m) != len(seq) or not all(v in (0, 1) for v in m):
                raise RequestError(422, f"attention_mask[{i}] must be {len(seq)} values of 0/1 (or bool)")
            if not any(m):
                raise RequestError(422, f"attention_mask[{i}] keeps no token")
            masks[i] = [int(v) for v in m]
    return seqs, masks


class Batcher:
    """A bounded queue of sequences and the task that runs them in equal-length batches."""

    def __init__(self, engine: Engine, max_batch: int, max_wait_ms: float, max_queue: int) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1e3
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=max_queue)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")
        self.full = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.loop())

    def submit(self, seqs: list[list[int]], masks: list) -> list[asyncio.Future]:
        """Queue every sequence of one request, or none of them (RequestError 429)."""
        if self.queue.maxsize - self.queue.qsize() < len(seqs):
            raise RequestError(429, f"the queue is full ({self.queue.maxsize} sequences); retry later")
        loop = asyncio.get_running_loop()
        futures = []
        for seq, mask in zip(seqs, masks):
            fut = loop.create_future()
            self.queue.put_nowait((seq, mask, fut))
            futures.append(fut)
        if self.queue.qsize() >= self.max_batch - 1:
            self.full.set()
        return futures

    async def loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            if self.queue.qsize() < self.max_batch - 1 and self.max_wait > 0:
                # One timed wait per batch (not one per sequence): submit() sets `full` once
                # a whole batch is queued.
                self.full.clear()
                try:
                    await asyncio.wait_for(self.full.wait(), self.max_wait)
                except asyncio.TimeoutError:
                    pass
            while len(items) < self.max_batch and not self.queue.empty():
                items.append(self.queue.get_nowait())
            by_len: dict[int, list] = {}
            for item in items:
                by_len.setdefault(len(item[0]), []).append(item)
            for group in by_len.values():
                seqs = [g[0] for g in group]
                masks = [g[1] for g in group]
                try:
                    results = await loop.run_in_executor(self.executor, self.engine.run_batch, seqs, masks)
                except Exception as exc:  # noqa: BLE001 - the requests get a 500, the server stays up
                    traceback.print_exc()
                    for _, _, fut in group:
                        if not fut.done():
                            fut.set_exception(RuntimeError(error_text(exc)))
                    continue
                for (_, _, fut), result in zip(group, results):
                    if not fut.done():
                        fut.set_result(result)


def make_app(engine: Engine, batcher: Batcher, info: dict) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        batcher.start()
        yield

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/info")
    async def get_info() -> JSONResponse:
        return JSONResponse(info)

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            seqs, masks = parse_request(body, engine)
            futures = batcher.submit(seqs, masks)
        except RequestError as err:
            headers = {"Retry-After": "1"} if err.status == 429 else None
            return JSONResponse({"error": err.message}, status_code=err.status, headers=headers)
        try:
            results = await asyncio.gather(*futures)
        except RuntimeError as exc:
            return JSONResponse({"error": f"the forward failed: {exc}"}, status_code=500)
        doc = {"outputs": [r[0] for r in results]}
        if engine.classification:
            doc["labels"] = [r[1] for r in results]
        return JSONResponse(doc)

    return app


def _has(module: str) -> bool:
    """Whether `module` is importable (uvicorn's "auto" loop and parser pick it when it is)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument(
        "--max-queue", type=int, default=32, help="queued sequences before 429 (spectrans serve's default bound)"
    )
    parser.add_argument("--variant", choices=VARIANTS, default="rfft-compile")
    args = parser.parse_args()
    if args.max_batch < 1 or args.max_queue < 1 or args.max_wait_ms < 0:
        parser.error("--max-batch and --max-queue must be >= 1, --max-wait-ms >= 0")

    import uvicorn

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, config = load_model(args.config, args.weights)
    engine = Engine(model, config, args.variant)
    if not reference.uses_embedding(config):
        raise SystemExit("error: serve_torch.py serves models with a token embedding (input_ids) only")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    host, port = sock.getsockname()[:2]

    info = {
        "server": "pytorch",
        "variant": engine.variant,
        "compile_error": engine.compile_error,
        "compile_s": engine.compile_s,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "batching": "equal lengths only, no padding",
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
        "max_queue": args.max_queue,
        "sequence_length": engine.sequence_length,
        "vocab_size": engine.vocab_size,
        "uvicorn_version": uvicorn.__version__,
        "event_loop": "uvloop" if _has("uvloop") else "asyncio",
        "http_parser": "httptools" if _has("httptools") else "h11",
        "pid": os.getpid(),
    }
    batcher = Batcher(engine, args.max_batch, args.max_wait_ms, args.max_queue)
    app = make_app(engine, batcher, info)
    uv_config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(uv_config)
    print(f"serve_torch: {engine.variant}, {torch.get_num_threads()} threads, torch {torch.__version__}", file=sys.stderr)
    print(f"listening on http://{host}:{port}", file=sys.stderr, flush=True)
    # Server.run picks the event loop (uvloop when installed) the way the uvicorn CLI does.
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
