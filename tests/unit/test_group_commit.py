import threading
import time

import pytest

from donjon.index.group_commit import GroupCommitter


def test_lone_writer_runs_in_its_own_thread():
    seen = []

    def run_batch(batch):
        seen.append((threading.current_thread(), len(batch)))
        for r in batch:
            r.succeed(r.fn(None))

    gc = GroupCommitter(run_batch)
    assert gc.execute(lambda w: 42) == 42
    assert seen == [(threading.current_thread(), 1)]


def test_concurrent_writers_share_batches_and_get_their_own_results():
    batches = []

    def run_batch(batch):
        time.sleep(0.01)  # like an fsync
        batches.append(len(batch))
        for r in batch:
            r.succeed(r.fn(None))

    gc = GroupCommitter(run_batch)
    results = {}

    def worker(i):
        results[i] = gc.execute(lambda w, i=i: i * 2)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i * 2 for i in range(20)}
    assert sum(batches) == 20
    assert len(batches) < 20  # some requests were committed together


def test_failures_stay_with_their_request():
    def run_batch(batch):
        for r in batch:
            try:
                r.succeed(r.fn(None))
            except Exception as e:
                r.fail(e)

    gc = GroupCommitter(run_batch)
    with pytest.raises(ValueError):
        gc.execute(lambda w: (_ for _ in ()).throw(ValueError("boom")))
    assert gc.execute(lambda w: "ok") == "ok"


def test_a_crashing_batch_runner_settles_every_request():
    def run_batch(batch):
        raise RuntimeError("disk on fire")

    gc = GroupCommitter(run_batch)
    with pytest.raises(RuntimeError):
        gc.execute(lambda w: 1)
    assert gc.pending_count() == 0


def test_execute_if_idle_never_waits_behind_a_batch():
    started, release = threading.Event(), threading.Event()

    def run_batch(batch):
        for r in batch:
            r.succeed(r.fn(None))

    gc = GroupCommitter(run_batch)
    assert gc.execute_if_idle(lambda w: 7) == (True, 7)  # idle: runs at once, in this thread

    def slow(w):
        started.set()
        release.wait(5)
        return 1

    t = threading.Thread(target=gc.execute, args=(slow,))
    t.start()
    assert started.wait(5)
    ran: list[bool] = []
    begin = time.monotonic()
    assert gc.execute_if_idle(lambda w: ran.append(True)) == (False, None)
    assert time.monotonic() - begin < 0.5 and ran == []  # refused without waiting, not run
    release.set()
    t.join()
    with pytest.raises(ValueError):  # an error of the function reaches its caller
        gc.execute_if_idle(lambda w: int("x"))
    assert gc.execute(lambda w: 3) == 3  # and the committer is free again


def test_a_thread_waiting_for_exclusive_use_goes_before_new_batches():
    """A WAL checkpoint waits for the running batch only: a writer that commits back to back (the
    event loop) would otherwise keep it waiting, waking it at the end of every batch."""
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def run_batch(batch):
        for r in batch:
            r.succeed(r.fn(None))

    gc = GroupCommitter(run_batch)

    def slow(w):
        started.set()
        release.wait(5)
        order.append("batch")

    first = threading.Thread(target=gc.execute, args=(slow,))
    first.start()
    assert started.wait(5)

    def checkpoint():
        with gc.exclusive():
            order.append("exclusive")

    waiting = threading.Thread(target=checkpoint)
    waiting.start()
    deadline = time.monotonic() + 5
    while not gc._exclusive_waiting and time.monotonic() < deadline:
        time.sleep(0.001)
    assert gc.execute_if_idle(lambda w: order.append("refused")) == (False, None)
    assert gc.execute_many_if_idle([lambda w: order.append("refused")]) is None
    later = threading.Thread(target=gc.execute, args=(lambda w: order.append("later"),))
    later.start()
    time.sleep(0.05)
    release.set()
    for t in (first, waiting, later):
        t.join(5)
    assert order == ["batch", "exclusive", "later"]
    assert gc.execute_if_idle(lambda w: 5) == (True, 5)
