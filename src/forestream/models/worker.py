"""Model worker processes: every model loads and predicts outside the calling process.

:class:`ModelWorker` starts ``python -m forestream.models.worker`` for one artifact. The
child loads the model (running ``code/inference.py`` if the artifact has one), reports
that it is ready, then serves requests one at a time with the handlers of
:mod:`forestream.models.handlers`. A model that crashes, hangs or leaks memory takes
only its worker down; the serving process sees :class:`WorkerCrashed` and starts
another one.

Transport: two pipes created with :func:`os.pipe` and handed to the child with
``pass_fds``, so the child's stdout and stderr stay free for user code — they go to
``log_path``. Every message is a frame::

    u32 big-endian header length | u32 big-endian body length | JSON header | raw body

The child's first frame says ``ready`` (with the model's framework, versions and
signature) or why loading failed. Requests carry an ``id``; answers come back in order
and are matched by it, so a caller that gives up on a request (timeout, cancellation)
does not receive the next request's answer. When the parent dies the request pipe
reaches end-of-file and the child exits; when the child dies the response pipe (and a
pidfd, where Linux offers one) tells the parent at once.

:func:`validate_artifact` is the import-time check built on the same machinery: spawn,
load, run a sample, report, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from . import errors
from .errors import (
    FrameworkUnavailable,
    ImportRefused,
    InvalidInput,
    ModelInvocationError,
    ModelLoadError,
    ModelsError,
    ModelValidationError,
    WorkerCrashed,
)

_PREFIX = struct.Struct(">II")
_READ_SIZE = 1 << 20
_JOIN_LIMIT = 1 << 16
_LOG_TAIL_BYTES = 4096
_CLOSE_GRACE = 5.0
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
_ERRORS = {name: getattr(errors, name) for name in errors.__all__}
_PREVIEW_BYTES = 1024
_ENTRY = "import sys; from forestream.models.worker import main; sys.exit(main())"


@dataclass
class Invocation:
    """A model's answer to one request: the response body and its content type."""

    body: bytes
    content_type: str
    custom_attributes: str | None = None


class ModelWorker:
    """One worker process serving one model artifact, driven from an asyncio event loop.

    ``start`` spawns the process and waits until the model is loaded; ``invoke`` sends
    one request and waits for its answer; ``close`` stops the process. A worker serves
    one request at a time (concurrent ``invoke`` calls queue up in order), so a caller
    that wants parallelism holds several workers. All calls must come from the event
    loop that called ``start``.

    Parameters
    ----------
    artifact_dir
        The model directory (SageMaker layout, or an MLflow model directory).
    framework
        The framework name (see :mod:`forestream.models.frameworks`).
    trusted
        Whether the artifact may execute code when it loads (pickles,
        ``code/inference.py``); an untrusted artifact that would is refused with
        :class:`ImportRefused`.
    log_path
        File that receives the worker's stdout and stderr (user code's prints and
        tracebacks included); ``None`` sends both to this process's stderr.
    env
        Extra environment variables for the worker. Numeric libraries get one thread
        (``OMP_NUM_THREADS=1``) unless this or the environment says otherwise.
    """

    def __init__(self, artifact_dir: Path, framework: str, *, trusted: bool,
                 log_path: Path | None = None, env: dict | None = None) -> None:
        self.artifact_dir = Path(artifact_dir)
        self.framework = framework
        self.trusted = trusted
        self.log_path = Path(log_path) if log_path is not None else None
        self.env = dict(env or {})
        self.pid: int | None = None
        self.info: dict | None = None
        self._process: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._request_fd: int | None = None
        self._response_fd: int | None = None
        self._pidfd: int | None = None
        self._buffer = bytearray()
        self._outgoing = bytearray()
        self._pending: dict[int, asyncio.Future] = {}
        self._deadlines: dict[int, tuple[float, float]] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self._next_id = 1
        self._gone: str | None = None  # why the worker is unusable, once it is

    @property
    def alive(self) -> bool:
        """Whether the process is running and can take requests."""
        return (self._process is not None and self._gone is None
                and self._process.poll() is None)

    async def __aenter__(self) -> ModelWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def start(self, timeout: float = 120.0) -> dict:
        """Spawn the worker and wait until the model is loaded; returns the ready info.

        The info holds ``framework``, ``framework_version``, ``python_version``,
        ``library_versions``, ``signature``, ``load_seconds``, ``custom_code`` and
        ``handler_functions``. Raises :class:`ImportRefused` for an untrusted artifact
        that executes code, :class:`ModelLoadError` when loading fails or takes longer
        than ``timeout`` seconds, and :class:`FrameworkUnavailable` when the framework
        is not installed.
        """
        if self._process is not None:
            raise RuntimeError("this ModelWorker was already started; create a new one")
        from .frameworks import needs_trust, trust_refusal

        # Refuse here, before a process exists; the worker checks again before loading.
        reason = needs_trust(self.artifact_dir, self.framework)
        if reason and not self.trusted:
            raise ImportRefused(trust_refusal(reason))
        self._loop = asyncio.get_running_loop()
        self._spawn()
        ready = self._loop.create_future()
        self._pending[0] = ready
        handle = self._loop.call_later(timeout, self._expire, 0, ModelLoadError(
            f"the {self.framework} model did not load within {timeout:g} s; the worker was "
            f"stopped{self._log_hint()}"))
        try:
            header, _ = await ready
        except WorkerCrashed as exc:
            await self.close()
            raise ModelLoadError(f"the worker exited while loading the model: {exc.message}"
                                 ) from None
        except BaseException:
            await self.close()
            raise
        finally:
            handle.cancel()
        if not header.get("ready"):
            await self.close()
            raise _error_from(header)
        self.info = header["info"]
        return self.info

    async def invoke(self, body: bytes, content_type: str, accept: str | None = None,
                     custom_attributes: str | None = None, timeout: float = 60.0) -> Invocation:
        """Run one request through the model's handlers and return its answer.

        Raises :class:`UnsupportedContentType` (415) for a content type or Accept the
        handlers do not speak, :class:`ModelInvocationError` (424) when the model or its
        code raises, and :class:`WorkerCrashed` when the process dies or does not answer
        within ``timeout`` seconds (it is then stopped; start a new worker).
        """
        header, response = await self._request(
            {"op": "invoke", "content_type": content_type, "accept": accept,
             "custom_attributes": custom_attributes}, body, timeout)
        if header["ok"]:
            return Invocation(response, header["content_type"], header.get("custom_attributes"))
        raise _error_from(header)

    async def close(self) -> None:
        """Stop the worker: end-of-file on its request pipe, then SIGTERM, then SIGKILL.

        Requests still waiting fail with :class:`WorkerCrashed`. Safe to call twice.
        """
        process = self._process
        if process is None:
            return
        self._mark_gone("the worker was closed")
        if process.poll() is None:
            deadline = time.monotonic() + _CLOSE_GRACE
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            for send in (process.terminate, process.kill):
                if process.poll() is None:
                    send()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        await asyncio.get_running_loop().run_in_executor(
                            None, process.wait, 2.0)
        self._fail_pending(f"the worker was closed (pid {process.pid})")

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), from any context; pending requests fail."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self._mark_gone("the worker was killed")
        self._fail_pending("the worker was killed")

    # ------------------------------------------------------------------- transport
    async def _request(self, header: dict, body: bytes, timeout: float) -> tuple[dict, bytes]:
        if self._gone is not None or self._process is None:
            raise WorkerCrashed(self._gone or "the worker has not been started")
        request_id = self._next_id
        self._next_id += 1
        header["id"] = request_id
        loop = self._loop
        future = loop.create_future()
        self._pending[request_id] = future
        deadline = loop.time() + timeout
        self._deadlines[request_id] = (deadline, timeout)
        watchdog = self._watchdog
        if watchdog is None or deadline < watchdog.when():
            if watchdog is not None:
                watchdog.cancel()
            self._watchdog = loop.call_at(deadline, self._check_deadlines)
        self._send(orjson.dumps(header), body)
        try:
            return await future
        finally:
            self._pending.pop(request_id, None)
            self._deadlines.pop(request_id, None)

    def _check_deadlines(self) -> None:
        """Expire requests past their deadline; one timer serves all of them.

        A timer per request would cost a heap push and a cancel on every call; instead
        the watchdog sleeps until the earliest deadline it knows, and on waking either
        expires what is late or sleeps again until the earliest pending deadline.
        """
        self._watchdog = None
        now = self._loop.time()
        for request_id, (deadline, timeout) in list(self._deadlines.items()):
            if deadline <= now:
                self._expire(request_id, None, timeout)
                return
        if self._deadlines and self._gone is None:
            earliest = min(deadline for deadline, _ in self._deadlines.values())
            self._watchdog = self._loop.call_at(earliest, self._check_deadlines)

    def _spawn(self) -> None:
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        log = open(self.log_path, "ab") if self.log_path is not None else None  # noqa: SIM115
        # ``-c`` rather than ``-m``: runpy would warn when the package's __init__ already
        # imported this module. ``-P`` keeps the working directory off sys.path.
        command = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-c",
                   _ENTRY, "--artifact-dir", str(self.artifact_dir),
                   "--framework", self.framework, "--request-fd", str(request_read),
                   "--response-fd", str(response_write)]
        if self.trusted:
            command.append("--trusted")
        try:
            self._process = subprocess.Popen(
                command, pass_fds=(request_read, response_write), stdin=subprocess.DEVNULL,
                stdout=log if log is not None else 2,
                stderr=subprocess.STDOUT, env=self._child_env(), cwd="/",
                start_new_session=True)
        except BaseException:
            for fd in (request_write, response_read):
                os.close(fd)
            raise
        finally:
            os.close(request_read)
            os.close(response_write)
            if log is not None:
                log.close()
        self.pid = self._process.pid
        self._request_fd, self._response_fd = request_write, response_read
        os.set_blocking(request_write, False)
        os.set_blocking(response_read, False)
        self._loop.add_reader(response_read, self._on_readable)
        if hasattr(os, "pidfd_open"):
            try:
                self._pidfd = os.pidfd_open(self.pid)
                self._loop.add_reader(self._pidfd, self._on_exit)
            except OSError:
                self._pidfd = None

    def _child_env(self) -> dict:
        env = dict(os.environ)
        for name in _THREAD_VARIABLES:
            env.setdefault(name, "1")
        env.update({str(k): str(v) for k, v in self.env.items()})
        # The artifact is content-addressed and must not change: no __pycache__ in code/.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        source_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root,
                                                          env.get("PYTHONPATH")]))
        return env

    def _send(self, header: bytes, body: bytes) -> None:
        prefix = _PREFIX.pack(len(header), len(body))
        if self._outgoing:
            self._outgoing += prefix + header + body
            return
        # One write() per frame: a pipe reader woken by the first piece of a writev()
        # would sleep again for the rest, doubling the context switches per request.
        frame = prefix + header + body if len(body) < _JOIN_LIMIT else None
        total = len(prefix) + len(header) + len(body)
        try:
            written = os.write(self._request_fd, frame) if frame is not None else \
                os.writev(self._request_fd, (prefix, header, body))
        except BlockingIOError:
            written = 0
        except OSError as exc:  # EPIPE: the worker is gone
            self._worker_gone(f"writing to the worker failed ({exc.strerror})")
            return
        if written < total:
            self._outgoing += (prefix + header + body)[written:]
            self._loop.add_writer(self._request_fd, self._on_writable)

    def _on_writable(self) -> None:
        try:
            written = os.write(self._request_fd, self._outgoing)
        except BlockingIOError:
            return
        except OSError as exc:
            self._worker_gone(f"writing to the worker failed ({exc.strerror})")
            return
        del self._outgoing[:written]
        if not self._outgoing:
            self._loop.remove_writer(self._request_fd)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._response_fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._worker_gone(None)
            return
        self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        buffer = self._buffer
        if not buffer and len(chunk) >= 8:  # the common case: exactly one whole frame
            header_length, body_length = _PREFIX.unpack_from(chunk)
            if len(chunk) == 8 + header_length + body_length:
                self._deliver(orjson.loads(chunk[8:8 + header_length]),
                              chunk[8 + header_length:])
                return
        buffer += chunk
        while len(buffer) >= 8:
            header_length, body_length = _PREFIX.unpack_from(buffer)
            end = 8 + header_length + body_length
            if len(buffer) < end:
                break
            header = orjson.loads(memoryview(buffer)[8:8 + header_length])
            body = bytes(buffer[8 + header_length:end])
            del buffer[:end]
            self._deliver(header, body)

    def _deliver(self, header: dict, body: bytes) -> None:
        future = self._pending.pop(header.get("id", 0), None)
        if future is not None and not future.done():
            future.set_result((header, body))

    def _on_exit(self) -> None:
        self._worker_gone(None)

    def _expire(self, request_id: int, error: ModelsError | None, timeout: float = 0.0) -> None:
        future = self._pending.get(request_id)
        if future is None or future.done():
            return
        if error is None:
            error = WorkerCrashed(f"the worker (pid {self.pid}) did not answer within "
                                  f"{timeout:g} s; it was stopped{self._log_hint()}")
        future.set_exception(error)
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # a stuck worker cannot be trusted with the next request
        self._mark_gone(error.message)
        self._fail_pending(error.message)

    def _worker_gone(self, reason: str | None) -> None:
        """The response pipe closed or the process exited: collect answers, fail the rest."""
        if self._gone is not None:
            return
        self._drain()
        process = self._process
        code = process.poll()
        if code is None:
            # The pipe closed but the process has not exited yet (or a child holds the
            # pipe): give it a moment, then stop it so the failure is reported at once.
            try:
                code = process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        why = reason or f"the worker (pid {self.pid}) exited with {_describe_exit(code)}"
        message = f"{why}{self._log_hint(tail=True)}"
        self._mark_gone(message)
        self._fail_pending(message)

    def _drain(self) -> None:
        if self._response_fd is None:
            return
        while True:
            try:
                chunk = os.read(self._response_fd, _READ_SIZE)
            except OSError:
                return
            if not chunk:
                return
            self._take(chunk)

    def _mark_gone(self, message: str) -> None:
        if self._gone is None:
            self._gone = message
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        loop = self._loop
        for fd, is_writer in ((self._response_fd, False), (self._pidfd, False),
                              (self._request_fd, True)):
            if fd is None:
                continue
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(Exception):
                    loop.remove_writer(fd) if is_writer else loop.remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._response_fd = self._pidfd = self._request_fd = None

    def _fail_pending(self, message: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WorkerCrashed(message))

    def _log_hint(self, tail: bool = False) -> str:
        if self.log_path is None:
            return ""
        if not tail:
            return f" (log: {self.log_path})"
        lines = _log_tail(self.log_path)
        return f"; last log lines ({self.log_path}):\n{lines}" if lines else \
            f" (log: {self.log_path})"


def validate_artifact(artifact_dir: Path, framework: str, *, trusted: bool,
                      sample: bytes | None = None, content_type: str | None = None,
                      timeout: float = 300, log_path: Path | None = None) -> dict:
    """Load an artifact in a fresh worker, run ``sample`` through it, and describe it.

    Synchronous (call it from a thread, not from a running event loop's thread — it
    then runs its own loop on a helper thread). Returns ``framework``,
    ``framework_version``, ``python_version``, ``library_versions``, ``signature``
    (from the model, an MLmodel file, or else the sample's shape), ``load_seconds``,
    ``custom_code``, ``handler_functions`` and ``sample_output`` (``None`` without a
    sample, else its ``content_type`` and the first 1 KB as text in ``preview``).

    Raises :class:`FrameworkUnavailable` when the framework is not installed,
    :class:`ImportRefused` when an untrusted artifact would execute code, and
    :class:`ModelValidationError` saying whether loading or the sample failed, and why.
    """
    coroutine = _validate(Path(artifact_dir), framework, trusted, sample, content_type,
                          float(timeout), log_path)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _validate(artifact_dir: Path, framework: str, trusted: bool, sample: bytes | None,
                    content_type: str | None, timeout: float, log_path: Path | None) -> dict:
    import tempfile

    from .frameworks import check_available, needs_trust, trust_refusal

    check_available(framework)
    try:
        reason = needs_trust(artifact_dir, framework)
    except InvalidInput as exc:  # no model file, an empty one, an ambiguous artifact
        raise ModelValidationError(exc.message) from None
    if reason and not trusted:
        raise ImportRefused(trust_refusal(reason))
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="forestream-validate-") as scratch:
        worker = ModelWorker(artifact_dir, framework, trusted=trusted,
                             log_path=log_path or Path(scratch) / "worker.log")
        try:
            try:
                info = dict(await worker.start(timeout=timeout))
            except (ImportRefused, FrameworkUnavailable):
                raise
            except ModelsError as exc:
                raise ModelValidationError(f"loading the {framework} model failed: "
                                           f"{exc.message}") from None
            info["sample_output"] = None
            if sample is not None:
                shown = content_type or "application/json"
                try:
                    header, output = await worker._request(
                        {"op": "sample", "content_type": content_type, "accept": None},
                        sample, max(1.0, deadline - time.monotonic()))
                except ModelsError as exc:
                    raise ModelValidationError(f"running the sample input ({shown}, "
                                               f"{len(sample)} bytes) failed: {exc.message}"
                                               ) from None
                if not header["ok"]:
                    raise ModelValidationError(
                        f"running the sample input ({shown}, {len(sample)} bytes) failed: "
                        f"{header['message']}")
                info["sample_output"] = {
                    "content_type": header["content_type"],
                    "preview": output[:_PREVIEW_BYTES].decode("utf-8", errors="replace")}
                observed = header.get("signature")
                signature = info.get("signature") or {}
                if observed and not signature.get("inputs"):
                    info["signature"] = {**signature, "inputs": observed["inputs"],
                                         "outputs": observed["outputs"] or
                                         signature.get("outputs", []), "source": "sample"}
        finally:
            await worker.close()
    return info


# ------------------------------------------------------------------ worker process side

def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process (started by :class:`ModelWorker`).

    Returns 1 when the model cannot be loaded (after reporting why to the parent);
    after serving, the process exits directly when the parent closes the pipe.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m forestream.models.worker",
                                     description="Serve one model over two pipes "
                                                 "(started by forestream.models.ModelWorker).")
    parser.add_argument("--artifact-dir", required=True, type=Path)
    parser.add_argument("--framework", required=True)
    parser.add_argument("--request-fd", required=True, type=int)
    parser.add_argument("--response-fd", required=True, type=int)
    parser.add_argument("--trusted", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(AttributeError, ValueError):
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
        header_length, body_length = _PREFIX.unpack(prefix)
        payload = self._reader.read(header_length + body_length)
        if len(payload) < header_length + body_length:
            return None
        return orjson.loads(payload[:header_length]), payload[header_length:]

    def send(self, header: dict, body: bytes = b"") -> None:
        encoded = orjson.dumps(header)
        view = memoryview(_PREFIX.pack(len(encoded), len(body)) + encoded + body)
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]


# ---------------------------------------------------------------------------- helpers

def _error_from(header: dict) -> ModelsError:
    cls = _ERRORS.get(header.get("error"), ModelInvocationError)
    return cls(header.get("message") or "the worker reported an error without a message")


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
