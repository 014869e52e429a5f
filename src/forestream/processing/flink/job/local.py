"""Run a forestream job file on PyFlink's local executor (a MiniCluster in this process).

``python -m forestream.processing.flink.job.local JOB.py OUT.pickle [PARALLELISM]`` (in
the Flink virtual environment) builds the job the file's ``build(env, properties)``
makes, translates it as an application's would be, runs it to its end on Flink and
writes, pickled, ``{sink uid: [(value, event time, key, record id), ...]}`` for every
``collect()`` sink: what the same sinks hold after ``env.execute()`` on the embedded
runtime. For trying a job on Flink before deploying it, and for the tests that check
both runtimes give the same results. Bounded sources only (collections).
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any


def run_local(job_file: str | Path, properties: dict[str, Any] | None = None,
              parallelism: int = 1) -> dict[str, list[tuple[Any, Any, Any, str]]]:
    """The records every ``collect()`` sink of the job received, by sink uid."""
    import cloudpickle
    from pyflink.datastream import StreamExecutionEnvironment as FlinkEnvironment

    from forestream.processing import StreamExecutionEnvironment
    from forestream.processing.flink.job.builder import build_flink_job
    from forestream.processing.flink.translate import translate
    from forestream.processing.worker import load_user_module

    path = Path(job_file).resolve()
    module = load_user_module(path.parent, path.name)
    cloudpickle.register_pickle_by_value(module)
    env = StreamExecutionEnvironment(properties=properties or {})
    module.build(env, properties or {})
    plan = translate(env.graph, local=True)
    flink = FlinkEnvironment.get_execution_environment()
    flink.set_parallelism(parallelism)
    flink.set_python_executable(sys.executable)  # the Flink environment's, not PATH's
    with tempfile.TemporaryDirectory(prefix="forestream-flink-local-") as folder:
        collected = build_flink_job(flink, env.graph, plan, collect_dir=Path(folder))
        flink.execute(f"local {path.name}")
        return {uid: list(_records(file)) for uid, file in collected.items()}


def _records(path: Path) -> Any:
    for part in sorted(path.parent.glob(f"{path.name}.*")):  # one per parallel instance
        with part.open("rb") as handle:
            while True:
                try:
                    yield pickle.load(handle)
                except EOFError:
                    break


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print("usage: python -m forestream.processing.flink.job.local JOB.py OUT.pickle "
              "[PARALLELISM]", file=sys.stderr)
        return 2
    results = run_local(args[0], parallelism=int(args[2]) if len(args) == 3 else 1)
    Path(args[1]).write_bytes(pickle.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
