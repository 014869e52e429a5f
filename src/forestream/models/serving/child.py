"""The worker process itself: load one model, say so, then answer requests until told to stop.

:class:`~forestream.models.serving.worker.ModelWorker` starts this as
``python -P -c "from forestream.models.serving.child import main; ..."`` with the
artifact, the framework and the two pipe descriptors on the command line. :func:`main`
loads the model with :class:`~forestream.models.serving.handlers.InferenceHandler`, sends the
ready frame (or why loading failed), and serves one request at a time over the pipes
(frames as :mod:`forestream.models.serving.wire` describes) until the parent closes
the request pipe.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from pathlib import Path

import orjson

from ..errors import ModelsError
from .wire import FRAME


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process (started by :class:`ModelWorker`).

    Returns 1 when the model cannot be loaded (after reporting why to the parent);
    after serving, the process exits directly when the parent closes the pipe.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m forestream.models.serving.worker",
                                     description="Serve one model over two pipes "
                                                 "(started by forestream.models.ModelWorker).")
    parser.add_argument("--artifact-dir", required=True, type=Path)
    parser.add_argument("--framework", required=True)
    parser.add_argument("--request-fd", required=True, type=int)
    parser.add_argument("--response-fd", required=True, type=int)
    parser.add_argument("--trusted", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if isinstance(sys.stdout, io.TextIOWrapper):  # not when stdout was replaced or closed
        with contextlib.suppress(ValueError):
            sys.stdout.reconfigure(line_buffering=True)
    channel = _Channel(args.request_fd, args.response_fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop

    from .handlers import InferenceHandler

    try:
        handler = InferenceHandler.load(args.artifact_dir, args.framework, trusted=args.trusted)
        info = handler.describe()
    except ModelsError as exc:
        channel.send({"id": 0, "ready": False, "error": type(exc).__name__,
                      "message": exc.message})
        return 1
    except Exception as exc:
        import traceback

        traceback.print_exc()
        channel.send({"id": 0, "ready": False, "error": "ModelLoadError",
                      "message": f"{type(exc).__name__}: {exc}"})
        return 1
    info["pid"] = os.getpid()
    print(f"forestream model worker {os.getpid()}: {info['framework']} model "
          f"{info['model_file']} loaded in {info['load_seconds']:.3f} s", file=sys.stderr,
          flush=True)
    channel.send({"id": 0, "ready": True, "info": info})
    _serve(channel, handler)
    # The parent closed the request pipe. Exit now rather than through interpreter
    # teardown: TensorFlow and PyTorch can take seconds to shut down their thread pools,
    # and a worker holds nothing that needs saving.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# --------------------------------------------------------------------------- helpers

def _serve(channel: _Channel, handler) -> None:
    """Answer requests until the parent closes the request pipe."""
    import traceback

    invoke = handler.invoke
    while True:
        frame = channel.receive()
        if frame is None:
            return
        header, body = frame
        request_id = header.get("id")
        try:
            if header.get("op") == "sample":
                out, out_type, observed = handler.run_sample(body, header.get("content_type"),
                                                            header.get("accept"))
                channel.send({"id": request_id, "ok": True, "content_type": out_type,
                              "signature": observed}, out)
                continue
            out, out_type, attributes = invoke(body, header.get("content_type"),
                                               header.get("accept"),
                                               header.get("custom_attributes"))
            channel.send({"id": request_id, "ok": True, "content_type": out_type,
                          "custom_attributes": attributes}, out)
        except ModelsError as exc:
            channel.send({"id": request_id, "ok": False, "error": type(exc).__name__,
                          "message": exc.message})
        except Exception as exc:
            traceback.print_exc()
            channel.send({"id": request_id, "ok": False, "error": "ModelInvocationError",
                          "message": f"{type(exc).__name__}: {exc}"})


class _Channel:
    """The worker's end of the two pipes: blocking frame reads and writes."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._reader = open(read_fd, "rb", buffering=1 << 16)  # noqa: SIM115
        self._write_fd = write_fd

    def receive(self) -> tuple[dict, bytes] | None:
        prefix = self._reader.read(8)
        if len(prefix) < 8:
            return None
        header_length, body_length = FRAME.unpack(prefix)
        payload = self._reader.read(header_length + body_length)
        if len(payload) < header_length + body_length:
            return None
        return orjson.loads(payload[:header_length]), payload[header_length:]

    def send(self, header: dict, body: bytes = b"") -> None:
        encoded = orjson.dumps(header)
        view = memoryview(FRAME.pack(len(encoded), len(body)) + encoded + body)
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]
