"""The worker process of an application: loads the user's code and runs its job.

``python -m forestream.processing.worker APP_DIR`` reads ``APP_DIR/config.json``, imports
the application's code (``APP_DIR/code/...``), lets its ``build(env, properties)`` build
the pipeline on a :class:`StreamExecutionEnvironment` that checkpoints into
``APP_DIR/checkpoints`` (resuming from the latest checkpoint there), and runs it until
SIGTERM, when it stops after the current step with a final checkpoint. Progress and
metrics go to ``APP_DIR/status.json``; a crash leaves its traceback in the log.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from . import exchange as ex
from .app_config import DEFAULT_MAX_PARALLELISM
from .environment import StreamExecutionEnvironment
from .exchange_plan import plan as plan_of
from .exchange_plan import shardable
from .kinesis_io import KinesisSource, kinesis_client
from .parallel import BALANCE_SECONDS, ParallelWorker, read_positions
from .runtime import IDLE_WAIT_SECONDS, JobRunner

STATUS_EVERY_SECONDS = 1.0


def load_user_module(code_dir: Path, entry: str):
    """Import the application's entry file (``entry`` relative to ``code_dir``)."""
    path = code_dir / entry
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("forestream_application", path)
    assert spec is not None and spec.loader is not None  # a .py file has a source loader
    module = importlib.util.module_from_spec(spec)
    # registered, so that values of classes defined there pickle (checkpoints, exchange)
    sys.modules["forestream_application"] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "build", None)):
        raise TypeError(f"{entry} must define build(env, properties) that builds the "
                        "pipeline on env")
    return module


def write_status(app_dir: Path, worker: int = 0, **fields) -> None:
    path = app_dir / ("status.json" if worker == 0 else f"status-{worker}.json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**fields, "worker": worker, "updated": time.time(),
                               "pid": os.getpid()}))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """``APP_DIR [WORKER WORKERS]``. A job with one source, a Kinesis stream, runs on the
    shard-sharing runtime (:func:`run_parallel`) whatever its parallelism, so that its
    state is laid out the same way for 1 worker or N and survives rescaling; other jobs
    (files, generators) run as one job in one process."""
    args = argv or sys.argv[1:]
    app_dir = Path(args[0])
    config = json.loads((app_dir / "config.json").read_text())
    worker, workers = (int(args[1]), int(args[2])) if len(args) == 3 else (0, 1)
    properties = config.get("properties", {})
    try:
        module = load_user_module(app_dir / "code", config["entry"])
        probe = StreamExecutionEnvironment(properties=properties)
        module.build(probe, properties)
        if not probe.nodes:
            raise ValueError("build(env, properties) added no source to env")
        why: str | None
        if _single_kinesis_source(probe) is None:
            why = ("parallelism > 1 needs a job with exactly one source, a Kinesis stream: "
                   "workers share its shards")
        else:
            why = shardable(probe.graph)
        if workers > 1 and why:
            raise ValueError(why)
        shares_shards = why is None
    except Exception:
        traceback.print_exc()
        write_status(app_dir, worker, state="FAILED", error=traceback.format_exc(limit=3))
        return 2
    # checkpoints of the job whole and per shard/key group cannot stand for each other
    # (the code changed from one kind of job to the other)
    checkpoints = app_dir / "checkpoints"
    whole_job = any(checkpoints.glob("checkpoint-*.pkl"))
    per_shard = any(p.is_dir() for p in checkpoints.glob("*"))
    split = shares_shards
    if (split and whole_job) or (not split and per_shard):
        message = (f"the checkpoints in {checkpoints} are "
                   f"{'of the whole job' if whole_job else 'per shard and key group'}, but "
                   f"this job now runs {'split' if split else 'whole'} (parallelism {workers}"
                   f"{'' if shares_shards else '; ' + str(why)}): its state cannot be carried "
                   "over. Start it with restore SKIP, or go back to the code/parallelism "
                   "that wrote them")
        print(message, flush=True)
        write_status(app_dir, worker, state="FAILED", error=message)
        return 2
    if split:
        return run_parallel(app_dir, config, module, probe, worker, workers)
    return run_single(app_dir, config, module)


def _single_kinesis_source(env: StreamExecutionEnvironment):
    sources = [n.source for n in env.nodes if n.source is not None]
    if len(sources) == 1 and isinstance(sources[0], KinesisSource):
        return sources[0]
    return None


def run_single(app_dir: Path, config: dict, module) -> int:
    """The whole job in this process, checkpointing into ``checkpoints/``."""
    env = StreamExecutionEnvironment(
        properties=config.get("properties", {}), checkpoint_dir=app_dir / "checkpoints",
        checkpoint_interval=float(config.get("checkpoint_interval", 10.0)),
        batch_size=int(config.get("batch_size", 1000)))
    try:
        module.build(env, config.get("properties", {}))
    except Exception:
        traceback.print_exc()
        write_status(app_dir, state="FAILED", error=traceback.format_exc(limit=3))
        return 2
    runner = JobRunner(env.graph, config["name"])

    def on_term(signum, frame):
        print(f"received signal {signum}: stopping with a final checkpoint", flush=True)
        runner.stop()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    done = threading.Event()

    def report() -> None:
        while not done.wait(STATUS_EVERY_SECONDS):
            r = runner.result
            write_status(app_dir, state="RUNNING", steps=r.steps, records_in=r.records_in,
                         checkpoints=r.checkpoints, restored_from=r.restored_from,
                         checkpoint_seconds=r.last_checkpoint_seconds,
                         checkpoint_bytes=r.last_checkpoint_bytes,
                         busy_seconds=round(r.busy_seconds, 3),
                         operators={n.uid: [n.operator.records_in, n.operator.records_out]
                                    for n in runner.nodes if n.operator is not None},
                         millis_behind_latest={
                             f"{n.uid}/{shard}": lag for n in runner.nodes if n.source
                             for shard, lag in getattr(n.source, "millis_behind", {}).items()},
                         read_positions=read_positions([runner]))

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    print(f"application {config['name']} running (pid {os.getpid()})", flush=True)
    parent = os.getppid()
    try:  # until stopped, or the server that supervises it is gone (no orphans)
        result = runner.run(until=lambda: os.getppid() != parent)
    except Exception:
        done.set()
        traceback.print_exc()
        write_status(app_dir, state="FAILED", error=traceback.format_exc(limit=5))
        return 1
    done.set()
    write_status(app_dir, state="STOPPED", steps=result.steps, records_in=result.records_in,
                 checkpoints=result.checkpoints, read_positions=read_positions([runner]))
    print(f"application {config['name']} stopped after {result.steps} steps", flush=True)
    return 0


def run_parallel(app_dir: Path, config: dict, module, probe: StreamExecutionEnvironment,
                 worker: int, workers: int) -> int:
    """Worker ``worker`` of ``workers`` sharing the job's Kinesis source (and, for a keyed
    job, its key groups): see :mod:`forestream.processing.parallel`."""
    source = _single_kinesis_source(probe)
    try:
        plan = plan_of(probe.graph)
        exchange = target = local = None
        key_groups = int(config.get("max_parallelism", DEFAULT_MAX_PARALLELISM))
        if plan is not None:  # the exchange lives on the server running this worker
            target = kinesis_client()
            if workers == 1:  # every key group here: records change hands in memory
                local = ex.LocalExchange(key_groups)
                exchange = ex.ExchangeConfig.existing(app_dir, key_groups, target)
            else:
                exchange = ex.ExchangeConfig.load(app_dir, config["name"], key_groups)
                exchange.ensure_stream(target)
        runner = ParallelWorker(app_dir, config, module, source, plan, exchange, target,
                                worker, workers, local=local)
        if local is not None:
            runner.enter_memory(target)
    except Exception:
        traceback.print_exc()
        write_status(app_dir, worker, state="FAILED", error=traceback.format_exc(limit=3))
        return 2
    stopping = {"flag": False}

    def on_term(signum, frame):
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    parent = os.getppid()
    orphaned = False
    print(f"application {config['name']} running (pid {os.getpid()}) as worker {worker} "
          f"of {workers}", flush=True)
    next_balance = 0.0
    report = False
    try:
        while not stopping["flag"]:
            if time.monotonic() >= next_balance:
                if os.getppid() != parent:  # the server died: stop, do not run orphaned
                    print(f"worker {worker}: the server (pid {parent}) is gone; stopping",
                          flush=True)
                    orphaned = True
                    break
                runner.balance()
                next_balance = time.monotonic() + BALANCE_SECONDS
                report = True
            polled = runner.step()
            if report:  # after a step, so the first report has the shards' lag
                write_status(app_dir, worker, state="RUNNING", **runner.status())
                report = False
            if not polled:
                runner.wait_for_input(IDLE_WAIT_SECONDS)
    except Exception:
        traceback.print_exc()
        write_status(app_dir, worker, state="FAILED", error=traceback.format_exc(limit=5))
        return 1
    positions = read_positions(runner.runners.values())  # where reading stops
    runner.stop(drain=not orphaned)
    write_status(app_dir, worker, state="STOPPED", records_in=runner.records,
                 read_positions=positions)
    print(f"application {config['name']} worker {worker} stopped after {runner.steps} steps",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
