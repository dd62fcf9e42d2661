"""The GIL is released during forward passes, models serve several Python threads at once,
and the thread pool size is what `threads=` / `set_threads` say."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import spectrans_rs

LARGE = {"hidden_dim": 128, "num_layers": 4, "sequence_length": 256, "vocab_size": 1000,
         "num_classes": 2}


@pytest.fixture(scope="module")
def large_model():
    return spectrans_rs.GFNet(LARGE, seed=3, threads=2)


def ids(batch, seed=0):
    return np.random.default_rng(seed).integers(0, 1000, size=(batch, 256))


def test_forward_releases_the_gil(large_model):
    x = ids(16)
    large_model(input_ids=x)  # warm up
    counter = [0]
    stop = threading.Event()
    started = threading.Event()

    def count():
        started.set()
        while not stop.is_set():
            counter[0] += 1

    worker = threading.Thread(target=count)
    worker.start()
    started.wait()
    try:
        # Forward passes for at least 0.3 s; with the GIL held throughout, the counter could
        # only move in the few instants between calls.
        progress = []
        deadline = time.perf_counter() + 0.3
        while time.perf_counter() < deadline or len(progress) < 3:
            before = counter[0]
            large_model(input_ids=x)
            progress.append(counter[0] - before)
    finally:
        stop.set()
        worker.join()
    # While each forward ran the other thread counted: every call saw progress.
    assert min(progress) > 100, progress


def test_threads_share_one_model(large_model):
    batches = [ids(4, seed=s) for s in range(8)]
    sequential = [large_model(input_ids=b) for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda b: large_model(input_ids=b), batches))
    for a, b in zip(sequential, concurrent):
        np.testing.assert_array_equal(a, b)


def test_threads_argument_sizes_the_pool():
    one = spectrans_rs.GFNet(LARGE, seed=3, threads=1)
    three = spectrans_rs.GFNet(LARGE, seed=3, threads=3)
    assert one.threads == 1
    assert three.threads == 3
    x = ids(2)
    np.testing.assert_allclose(one(input_ids=x), three(input_ids=x), rtol=1e-5, atol=1e-6)


def test_set_threads_sets_the_shared_pool():
    try:
        spectrans_rs.set_threads(1)
        assert spectrans_rs.get_threads() == 1
        model = spectrans_rs.GFNet(LARGE, seed=3)
        assert model.threads == 1
        own = spectrans_rs.GFNet(LARGE, seed=3, threads=2)
        assert own.threads == 2
        x = ids(2)
        np.testing.assert_allclose(model(input_ids=x), own(input_ids=x), rtol=1e-5, atol=1e-6)
    finally:
        spectrans_rs.set_threads(None)
    assert spectrans_rs.get_threads() >= 1
