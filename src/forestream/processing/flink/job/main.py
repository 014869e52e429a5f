"""The PyFlink program of a forestream application: ``flink run -py main.py CONFIG``.

``CONFIG`` is a JSON file the server writes when it submits the application:
``name``, ``code_dir`` and ``entry`` (the application's code, as the embedded worker
reads it), ``properties``, ``checkpoint_interval`` (seconds), ``endpoint`` (the
forestream server's Kinesis API, also given to the code as ``FORESTREAM_ENDPOINT_URL``
so that ``kinesis_client()`` reaches it), ``access_token`` and ``max_parallelism``.

The program loads the user's file unchanged, lets its ``build(env, properties)`` build
the pipeline on a forestream environment, translates the graph
(:func:`~forestream.processing.flink.translate.translate`) and builds the Flink job from
it (:func:`.builder.build_flink_job`). The user's module is pickled by value into the
job (the TaskManagers do not have it on their path), and its folder is shipped with
the job for whatever else it imports.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def configure(config: dict[str, Any]) -> Any:
    """The PyFlink environment with the job built on it, from ``config``."""
    import cloudpickle
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment as FlinkEnvironment

    # absolute imports: Flink runs this file as a script (flink run --python)
    from forestream.processing import StreamExecutionEnvironment
    from forestream.processing.flink.job.builder import build_flink_job
    from forestream.processing.flink.translate import translate
    from forestream.processing.worker import load_user_module

    if config.get("endpoint"):
        os.environ["FORESTREAM_ENDPOINT_URL"] = config["endpoint"]
    code_dir = Path(config["code_dir"]).resolve()
    module = load_user_module(code_dir, config["entry"])
    properties = config.get("properties") or {}
    env = StreamExecutionEnvironment(properties=properties)
    module.build(env, properties)
    plan = translate(env.graph)
    for loaded in list(sys.modules.values()):  # the user's modules travel with the job
        where = getattr(loaded, "__file__", None)
        if where and Path(where).resolve().is_relative_to(code_dir):
            cloudpickle.register_pickle_by_value(loaded)
    interval_ms = round(float(config.get("checkpoint_interval", 10.0)) * 1000)
    settings = Configuration()
    # Python operators write their changed keyed state to Flink when a bundle ends; a
    # per-key forest is megabytes, so bundles end at checkpoints (which end them anyway),
    # not every second (PyFlink's default)
    settings.set_string("python.fn-execution.bundle.time", str(max(1000, interval_ms)))
    flink = FlinkEnvironment.get_execution_environment(settings)
    flink.add_python_file(str(code_dir))
    flink.set_max_parallelism(int(config.get("max_parallelism") or 128))
    flink.enable_checkpointing(interval_ms)
    build_flink_job(flink, env.graph, plan, access_token=config.get("access_token") or "")
    return flink


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: flink run -py main.py CONFIG.json", file=sys.stderr)
        return 2
    config = json.loads(Path(args[0]).read_text())
    flink = configure(config)
    flink.execute(config.get("name") or "forestream application")
    return 0


if __name__ == "__main__":
    sys.exit(main())
