"""The threads Kinesis calls run on (forestream.server.aws.workers.WorkerPool)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from forestream.server.aws.workers import WorkerPool


def test_a_call_runs_on_a_pool_thread_and_returns_its_result_or_raises_its_error():
    pool = WorkerPool(max_threads=2, name="t")

    def boom() -> None:
        raise KeyError("gone")

    async def main():
        loop_thread = threading.current_thread().name
        name = await pool.run(lambda: threading.current_thread().name)
        assert name != loop_thread and name.startswith("t-")
        assert await pool.run(pow, 2, 10) == 1024
        with pytest.raises(KeyError, match="gone"):
            await pool.run(boom)

    asyncio.run(main())
    pool.close()


def test_calls_one_after_another_share_one_thread():
    pool = WorkerPool(max_threads=8, name="seq")

    async def main():
        return {await pool.run(lambda: threading.current_thread().name) for _ in range(50)}

    assert len(asyncio.run(main())) == 1
    pool.close()


def test_blocking_calls_in_flight_together_each_get_a_thread():
    # five calls that only finish once all five are running: a pool that queued any of
    # them behind another would never finish (bounded by the barrier's timeout)
    pool = WorkerPool(max_threads=8)
    barrier = threading.Barrier(5, timeout=20)

    async def main():
        return await asyncio.gather(*(pool.run(barrier.wait) for _ in range(5)))

    assert sorted(asyncio.run(main())) == [0, 1, 2, 3, 4]
    pool.close()


def test_calls_beyond_the_thread_limit_wait_and_all_complete():
    pool = WorkerPool(max_threads=2)
    running, most = 0, 0
    lock = threading.Lock()
    release = threading.Event()

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(0.05)
        with lock:
            running -= 1
        return i

    async def main():
        return await asyncio.gather(*(pool.run(work, i) for i in range(12)))

    assert asyncio.run(main()) == list(range(12))
    assert most <= 2
    pool.close()


def test_a_closed_pool_serves_later_calls_on_new_threads():
    pool = WorkerPool(max_threads=1, name="again")

    async def name():
        return await pool.run(lambda: threading.current_thread())

    first = asyncio.run(name())
    pool.close()
    first.join(10)
    assert not first.is_alive()
    second = asyncio.run(name())
    assert second is not first and second.is_alive()
    pool.close()


def test_the_thread_limit_must_be_positive():
    with pytest.raises(ValueError, match="max_threads must be at least 1; got 0"):
        WorkerPool(max_threads=0)
