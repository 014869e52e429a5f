"""Model worker processes: every model loads and predicts outside the calling process.

:class:`ModelWorker` starts a Python process for one artifact. The child loads the
model (running ``code/inference.py`` if the artifact has one), reports that it is ready,
then serves requests one at a time with the handlers of
:mod:`forestream.models.serving.handlers`. A model that crashes, hangs or leaks memory takes
only its worker down; the serving process sees :class:`WorkerCrashed` and starts
another one.

The transport — two pipes, length-prefixed JSON frames, answers matched by request id,
a dead worker noticed at once — is
:class:`~forestream.models.serving.wire.WorkerProcess`, which :class:`ModelWorker`
extends; the child's side is :mod:`forestream.models.serving.child`.

:func:`validate_artifact` is the import-time check built on the same machinery: spawn,
load, run a sample, report, close.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import errors
from ..errors import (
    FrameworkUnavailable,
    ImportRefused,
    InvalidInput,
    ModelInvocationError,
    ModelLoadError,
    ModelsError,
    ModelValidationError,
    WorkerCrashed,
)
from ..frameworks import check_available, needs_trust, trust_refusal
from .child import main as main  # re-exported: the worker's entry point lived here
from .wire import WorkerProcess

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
_ERRORS = {name: getattr(errors, name) for name in errors.__all__}
_PREVIEW_BYTES = 1024
_ENTRY = "import sys; from forestream.models.serving.child import main; sys.exit(main())"


@dataclass
class Invocation:
    """A model's answer to one request: the response body and its content type."""

    body: bytes
    content_type: str
    custom_attributes: str | None = None


class ModelWorker(WorkerProcess):
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
        super().__init__(log_path)
        self.artifact_dir = Path(artifact_dir)
        self.framework = framework
        self.trusted = trusted
        self.env = dict(env or {})
        self.info: dict | None = None

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
        # Refuse here, before a process exists; the worker checks again before loading.
        reason = needs_trust(self.artifact_dir, self.framework)
        if reason and not self.trusted:
            raise ImportRefused(trust_refusal(reason))
        self._loop = asyncio.get_running_loop()
        self._spawn(_ENTRY, self._child_arguments(), self._child_env())
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

    # ------------------------------------------------------------------- the child
    def _child_arguments(self) -> list[str]:
        arguments = ["--artifact-dir", str(self.artifact_dir), "--framework", self.framework]
        return [*arguments, "--trusted"] if self.trusted else arguments

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


# --------------------------------------------------------------------------- helpers

def _error_from(header: dict) -> ModelsError:
    cls = _ERRORS.get(header.get("error", ""), ModelInvocationError)
    return cls(header.get("message") or "the worker reported an error without a message")


if __name__ == "__main__":
    sys.exit(main())
