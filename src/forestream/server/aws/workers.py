"""The threads that run AWS operations off the event loop, at the cost of one hand-off.

Every Kinesis call but SubscribeToShard runs (decoding, validation, the store, rendering)
on a thread, because the store may wait on a disk (PutRecords' group-commit fsync, a cold
read) and the event loop must never wait with it. ``anyio.to_thread.run_sync`` costs
100-160 us of CPU per call on the 2-core machine (a cancel scope, a capacity limiter,
a ``queue.Queue`` with its condition variable); the quickstart makes 150-250 small calls
a second. :class:`WorkerPool` hands a call over through a C-level ``SimpleQueue`` and
answers through ``call_soon_threadsafe``: about 20 us of CPU (a trivial function handed
over 2,000 times; docs/streams.md, "What a request costs").

Threads are started as calls need them (one per call in flight, up to ``max_threads``,
so that concurrent PutRecords still meet in one fsync) and live until :meth:`close`
(the server's shutdown; a pool used again afterwards starts new ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")
_STOP = object()


class WorkerPool:
    """Threads for blocking calls made from an event loop (see the module docstring)."""

    def __init__(self, max_threads: int = 40, name: str = "aws-call") -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1; got {max_threads}")
        self.max_threads = max_threads
        self.name = name
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads free for a call, less calls waiting for one
        self._generation = 0  # close() starts a new one: old threads' counts no longer count

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of the pool's threads; its result or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._idle <= 0 and len(self._threads) < self.max_threads:
                self._start()  # the new thread is busy with this call from the start
            else:
                self._idle -= 1  # claimed now (below 0: calls wait for a thread)
            self._queue.put((loop, future, fn, args))
        return await future

    def close(self) -> None:
        """Stop the threads once the calls queued before are done."""
        with self._lock:  # the old threads drain the old queue; new calls get a new one
            stopping, self._threads = len(self._threads), []
            old, self._queue = self._queue, SimpleQueue()
            self._idle = 0
            self._generation += 1
        for _ in range(stopping):
            old.put(_STOP)

    # ------------------------------------------------------------------ threads
    def _start(self) -> None:  # lock held; the new thread takes the call being queued
        thread = threading.Thread(target=self._work, daemon=True,
                                  args=(self._queue, self._generation),
                                  name=f"{self.name}-{len(self._threads) + 1}")
        self._threads.append(thread)
        thread.start()

    def _work(self, queue: SimpleQueue[Any], generation: int) -> None:
        while True:
            item = queue.get()
            if item is _STOP:
                return
            loop, future, fn, args = item
            result, error = None, None
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                error = exc
            with self._lock:  # free before the answer goes: the next call may come at once
                if generation == self._generation:
                    self._idle += 1
            _deliver(loop, future, result, error)


def _deliver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any,
             error: BaseException | None) -> None:
    def settle() -> None:
        if future.done():  # the awaiting task was cancelled meanwhile
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
        loop.call_soon_threadsafe(settle)
