"""HTTP/2 for ``forestream server --http2``: the same application served by Hypercorn.

The Kinesis Client Library 2.x (through the AWS SDK for Java's Netty client) reads
SubscribeToShard over HTTP/2. With ``--http2`` the server's port speaks HTTP/1.1 and
cleartext HTTP/2 (``h2c``, by prior knowledge or upgrade); with a certificate
(``--tls-port``, ``--tls-cert``, ``--tls-key``) a second port speaks TLS with ALPN
(``h2``, then ``http/1.1``). Application workers keep using the cleartext port.

Hypercorn is an optional dependency (``pip install 'forestream[http2]'``).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import anyio


def check_available() -> None:
    try:
        import h2  # noqa: F401
        import hypercorn  # noqa: F401
    except ImportError:
        raise SystemExit("--http2 and --tls-* need Hypercorn and h2: "
                         "pip install 'forestream[http2]'") from None


async def serve(app, host: str, port: int, applications, log_level: str = "warning",
                tls_port: int | None = None, certfile: Path | None = None,
                keyfile: Path | None = None) -> None:
    """Serve ``app`` until SIGTERM/SIGINT; application workers are stopped while the
    server still answers, so their final checkpoints can flush to its streams."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.loglevel = log_level.upper()
    config.accesslog = None
    config.graceful_timeout = 5.0
    if tls_port is not None:
        config.certfile, config.keyfile = str(certfile), str(keyfile)
        config.bind = [f"{host}:{tls_port}"]
        config.insecure_bind = [f"{host}:{port}"]
    else:
        config.bind = [f"{host}:{port}"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def shutdown_trigger() -> None:
        await stop.wait()
        await anyio.to_thread.run_sync(applications.stop_workers)

    try:
        await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger)
    except BaseException:  # e.g. a port already in use, after the workers started
        await anyio.to_thread.run_sync(applications.stop_workers)
        raise
