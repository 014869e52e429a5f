"""A synchronous handle on a NATS connection: the stream store is threaded, nats-py is
asyncio, so the connection lives on an event loop in a thread of its own and every call
is handed to it and waited for.

Errors the cluster answers while it cannot serve (no leader yet, a node going away, a
request timing out) become :class:`ClusterUnavailableError`, which the Kinesis front end
answers with AWS's ``InternalFailure`` (500): every AWS SDK retries those.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..errors import StreamError

T = TypeVar("T")

#: How long a call waits for the cluster (a leader election takes a few seconds).
CALL_TIMEOUT_SECONDS = 20.0


class ClusterUnavailableError(StreamError):
    """The JetStream cluster could not serve the request now (retry later)."""

    code = "InternalFailure"
    status = 500


class NatsBridge:
    """One NATS connection (with reconnects across ``servers``) run on its own loop."""

    def __init__(self, servers: list[str], *, name: str = "forestream",
                 connect_timeout: float = 10.0, options: dict[str, Any] | None = None
                 ) -> None:
        try:
            import nats
        except ImportError:
            raise ValueError("streams on a NATS JetStream cluster need the nats-py package: "
                             "pip install 'forestream[nats]'") from None

        self.servers = servers
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats",
                                        daemon=True)
        self._thread.start()

        async def connect() -> Any:
            async def quiet(_exc: Exception) -> None:  # reconnects are expected: no noise
                return None
            return await nats.connect(
                servers=servers, name=name, connect_timeout=connect_timeout,
                allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.25,
                error_cb=quiet, **(options or {}))
        try:
            self.nc = self.call(connect(), timeout=connect_timeout + 5)
        except Exception as exc:
            self._stop_loop()
            raise ClusterUnavailableError(
                f"cannot connect to the NATS cluster at {', '.join(servers)}: {exc}") from None
        self.js = self.nc.jetstream(timeout=CALL_TIMEOUT_SECONDS / 2)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_SECONDS) -> T:
        """Run ``coro`` on the connection's loop; its result (or exception)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise ClusterUnavailableError(
                f"the NATS cluster did not answer within {timeout:.0f} s") from None

    def run(self, fn: Callable[[], Awaitable[T]], timeout: float = CALL_TIMEOUT_SECONDS) -> T:
        """``call`` for a coroutine function without arguments."""
        async def wrapper() -> T:
            return await fn()
        return self.call(wrapper(), timeout)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):  # closing anyway
            self.call(self.nc.drain(), timeout=5)
        self._stop_loop()

    def _stop_loop(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_the_rest(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()
