"""The dry translation of an application's code: does it run on Flink, and as what?

``python -m forestream.processing.flink.dry_run CODE_DIR ENTRY`` (properties as JSON on
standard input) loads the code as the embedded worker would, lets its
``build(env, properties)`` build the pipeline, and prints one JSON object: ``{"ok":
true, "plan": [...], "notes": [...]}`` or ``{"ok": false, "error": "..."}`` naming each
step that cannot run on Flink and why. The server runs it in a child process of its own
Python (no Flink needed) when an application with ``runtime = "flink"`` is created or
updated, so the user's ``build`` never runs inside the server, and a job is refused at
once rather than failing on the cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from ..errors import ApplicationError

DRY_RUN_TIMEOUT_SECONDS = 120.0


def dry_translate(code_dir: Path, entry: str, properties: dict[str, Any],
                  endpoint: str | None = None) -> dict[str, Any]:
    """The plan of the code in ``code_dir`` (see the module docstring), or raise
    :class:`~forestream.processing.errors.ApplicationError` with the reason."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if endpoint:
        env["FORESTREAM_ENDPOINT_URL"] = endpoint
    try:
        done = subprocess.run([sys.executable, "-m", __name__, str(code_dir), entry],
                              input=json.dumps(properties), capture_output=True, text=True,
                              timeout=DRY_RUN_TIMEOUT_SECONDS, env=env)
    except subprocess.TimeoutExpired:
        raise ApplicationError(f"build(env, properties) of {entry} did not finish within "
                               f"{DRY_RUN_TIMEOUT_SECONDS:.0f} s while the job was planned "
                               "for Flink") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ApplicationError(f"planning {entry} for Flink failed: "
                               f"{(done.stderr or done.stdout).strip()[-1500:]}") from None
    if not answer.get("ok"):
        raise ApplicationError(answer.get("error") or "the job cannot run on Flink")
    return answer


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m forestream.processing.flink.dry_run CODE_DIR ENTRY "
              "< properties.json", file=sys.stderr)
        return 2
    from forestream.processing import StreamExecutionEnvironment
    from forestream.processing.worker import load_user_module

    from .translate import UntranslatableJob, translate

    try:
        properties = json.loads(sys.stdin.read() or "{}")
        module = load_user_module(Path(args[0]), args[1])
        env = StreamExecutionEnvironment(properties=properties)
        module.build(env, properties)
        plan = translate(env.graph)
    except UntranslatableJob as exc:
        print(json.dumps({"ok": False, "error": str(exc), "refusals": exc.refusals}))
        return 0
    except Exception as exc:  # noqa: BLE001 - the user's build failed: say how
        trace = traceback.format_exception_only(type(exc), exc)[-1].strip()
        print(json.dumps({"ok": False, "error": f"build(env, properties) of {args[1]} "
                                                f"failed: {trace}"}))
        return 0
    print(json.dumps({"ok": True, "plan": plan.describe(), "notes": plan.notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
