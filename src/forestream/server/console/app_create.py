"""The console's "Create application" form, read into the arguments of
:meth:`~forestream.processing.applications.ApplicationManager.create_application`.

The form sends what ``POST /api/v1/applications`` takes: the name (checked as the REST
API checks it, with its words), the job's code as ``{"filename", "text"}`` (read by
:class:`~forestream.processing.app_code.ApplicationCode`, as the REST API reads it),
the runtime and Flink URL, parallelism, checkpoint interval, description and runtime
properties. Everything else (ranges, the runtime, the Flink URL's form, whether the job
can run on Flink) is the manager's to check, so its refusals read the same from the
console, the CLI and the REST API.

The form's own checks are about what only a form sends: text where the API takes typed
JSON (numbers must parse, the message naming the value and the accepted range;
properties come as ``GROUP.KEY=VALUE`` lines), a file upload and a text box for the
same code (exactly one of them, UTF-8), and code that must compile (Python's
``compile``, which runs nothing), so a typo in pasted code is refused at once instead
of failing when the application starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forestream.names import SAFE_NAME_RULE
from forestream.processing.app_code import ApplicationCode
from forestream.processing.app_config import MAX_PARALLELISM, check_application_name
from forestream.processing.errors import ApplicationError

from .forms import Form

#: The file name pasted code is installed as (uploaded files keep their own name).
PASTED_FILENAME = "job.py"
MIN_CHECKPOINT_SECONDS, MAX_CHECKPOINT_SECONDS = 0.1, 86400.0


@dataclass(frozen=True)
class CreateRequest:
    """What the form asks for: the manager's arguments, and whether to start at once."""

    name: str
    code: ApplicationCode
    options: dict[str, Any]
    start: bool


def read_create_form(form: Form) -> CreateRequest:
    """The create form's request, or :class:`ApplicationError` naming the bad value
    (nothing is stored before the manager is called)."""
    fields = form.fields
    name = (fields.get("name") or "").strip()
    if not name:
        raise ApplicationError(f"give the application a name ({SAFE_NAME_RULE}); nothing "
                               "was created")
    check_application_name(name)
    code = _code(form)
    runtime = fields.get("runtime") or "embedded"
    options: dict[str, Any] = {
        "runtime": runtime,
        "parallelism": _whole(fields, "parallelism", 1, MAX_PARALLELISM, default=1),
        "checkpoint_interval": _seconds(fields, "checkpoint_interval", default=10.0),
        "description": (fields.get("description") or "").strip(),
        "properties": _properties(fields.get("properties") or ""),
    }
    # the Flink URL box is hidden for the embedded runtime: what it still holds is not
    # the user's choice (the API would refuse a flink_url with runtime embedded)
    flink_url = (fields.get("flink_url") or "").strip()
    if runtime == "flink" and flink_url:
        options["flink_url"] = flink_url
    return CreateRequest(name, code, options, start=fields.get("start") == "1")


def _code(form: Form) -> ApplicationCode:
    upload = form.files.get("code_file")
    pasted = (form.fields.get("code_text") or "").replace("\r\n", "\n")
    if upload is not None and pasted.strip():
        raise ApplicationError(f"give the code once: a file ({upload.filename}) was chosen "
                               "and code was pasted too; clear one of them")
    if upload is not None:
        filename = upload.filename
        try:
            text = upload.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApplicationError(f"code file {filename!r:.80} is not UTF-8 text; send a "
                                   "Python source file") from None
    elif pasted.strip():
        filename, text = PASTED_FILENAME, pasted
    else:
        raise ApplicationError("give the job's code: choose a .py file or paste its source "
                               "(it defines build(env, properties)); nothing was created")
    code = ApplicationCode.from_request({"filename": filename, "text": text})
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ApplicationError(f"code {filename} does not compile: {exc.msg} (line "
                               f"{exc.lineno}); nothing was created") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, deep nesting
        raise ApplicationError(f"code {filename} does not compile: {exc}; nothing was "
                               "created") from None
    return code


def _whole(fields: dict[str, str], name: str, low: int, high: int, default: int) -> int:
    raw = (fields.get(name) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):  # a range error is the manager's, in its words
        raise ApplicationError(f"{name} {raw!r:.40} must be a whole number from {low} to "
                               f"{high}")
    return int(raw)


def _seconds(fields: dict[str, str], name: str, default: float) -> float:
    raw = (fields.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApplicationError(f"{name} {raw!r:.40} must be a number of seconds from "
                               f"{MIN_CHECKPOINT_SECONDS:g} to {MAX_CHECKPOINT_SECONDS:g}"
                               ) from None
    return value


def _properties(text: str) -> dict[str, dict[str, str]]:
    """``GROUP.KEY=VALUE`` lines (as ``forestream apps create -p`` takes them)."""
    groups: dict[str, dict[str, str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        group, dot, item = key.strip().partition(".")
        if not sep or not dot or not group or not item:
            raise ApplicationError(f"properties line {number} {line!r:.80}: expected "
                                   "GROUP.KEY=VALUE, e.g. input.stream=sensor-readings")
        groups.setdefault(group, {})[item] = value.strip()
    return groups
