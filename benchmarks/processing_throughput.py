"""Stream processing throughput and latency: forestream.processing vs PyFlink, side by side.

Input: --events JSON strings {"key": "k17", "ts": <ms>, "value": <float>, "seq": <i>}, 100 keys,
event time 10 ms apart, up to 2 s out of order, generated once into a file. Two pipelines:
  window: decode -> timestamps/watermarks (5 s bound) -> key_by(key) -> tumbling 1-min event-time
          window, mean per key (AggregateFunction) -> sink
  rcf:    decode -> key_by(key) -> per-key Random Cut Forest (50 trees, sample 128) -> sink
forestream: batch sizes 100/1000/5000, no checkpoints (+ RCF with NUMBA_NUM_THREADS=1). PyFlink
(apache-flink 2.3 DataStream API, local mini-cluster, Python functions; own venv, installed on
first use) at parallelism 1 and 2: its RCF is a KeyedProcessFunction with the SAME forestream
RandomCutForest per key in ValueState (+ a row keeping forests in a plain dict instead; a
labelled pure-Python stand-in if forestream.rcf cannot import). The managed-application path
(rcf only): the same pipeline as a forestream application at parallelism 1 and 2 on a
`forestream server` (fsync on), reading the events from a 4-shard Kinesis stream and
writing scores to another; its CPU is the server's and its workers' (not the benchmark's
client, which loads and reads the streams). Each run is a fresh subprocess:
  throughput: a bounded collection; events/s = events / execute() wall time; CPU = user+sys of
              the worker and its descendants (JVM, Python UDF workers) during execute().
  fixed rate: events released by wall clock at --rate (forestream: a Source subclass; PyFlink: a
              parallelism-1 Python map sleeping until each event's time). Latency = sink arrival
              - scheduled release (window results: of the newest event in the window); first
              output = first sink arrival - subprocess launch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

KEYS, STEP_MS, JITTER_MS, BOUND_S, WINDOW_S, BASE_MS = 100, 10, 2000, 5, 60, 1_700_000_000_000
RCF_ARGS = {"num_trees": 50, "sample_size": 128}
ROOT = Path(__file__).resolve().parents[1]
PYFLINK_VENV = Path.home() / ".cache/forestream-bench/pyflink-venv"
PYFLINK_PKGS = ["apache-flink==2.3.0", "numba", "numpy==2.1.3"]
MARK = "RESULT "


def make_events(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        value = rng.gauss(10.0, 1.0) + (8.0 if rng.random() < 0.001 else 0.0)
        out.append(json.dumps({"key": f"k{rng.randrange(KEYS)}",
                               "ts": BASE_MS + i * STEP_MS - rng.randrange(JITTER_MS),
                               "value": round(value, 4), "seq": i}))
    return out


class TreeCPU:
    """CPU seconds of a process (default: this one) and its descendants, from /proc
    (sampled every 0.1 s)."""

    def __init__(self, root: int | None = None) -> None:
        self.root = root or os.getpid()
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        tick, procs = os.sysconf("SC_CLK_TCK"), {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as handle:
                        f = handle.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                procs[int(entry)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)
        mine, todo = set(), [self.root]
        while todo:
            pid = todo.pop()
            mine.add(pid)
            todo += [p for p, (ppid, _) in procs.items() if ppid == pid and p not in mine]
        for pid in mine & procs.keys():
            self.seen[pid] = max(self.seen.get(pid, 0.0), procs[pid][1])

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self.sample()

    def start(self) -> None:
        self.sample()
        self.base = sum(self.seen.values())
        self._thread.start()

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        self.sample()
        total = sum(self.seen.values())
        return total - self.base, total


def mean_agg_methods(base):
    class MeanAgg(base):  # accumulator: [sum, count, newest seq]
        def create_accumulator(self):
            return [0.0, 0, -1]

        def add(self, value, acc):
            return [acc[0] + value["value"], acc[1] + 1, max(acc[2], value["seq"])]

        def get_result(self, acc):
            return {"mean": acc[0] / acc[1], "count": acc[1], "seq": acc[2]}

        def merge(self, a, b):
            return [a[0] + b[0], a[1] + b[1], max(a[2], b[2])]
    return MeanAgg()


def run_forestream(cfg, cpu: TreeCPU):
    import forestream.processing as fsp

    events = Path(cfg["data"]).read_text().splitlines()[:cfg["events"]]
    meta: dict = {}

    class PacedSource(fsp.Source):
        name, bounded = "paced", True

        def __init__(self, values, rate):
            self.values, self.rate, self.position = values, rate, 0

        def open(self):
            meta["t0"] = self.t0 = time.time()

        def poll(self, max_records):
            now = time.time()
            due = min(len(self.values), int((now - self.t0) * self.rate) + 1)
            start = self.position
            self.position = end = min(due, start + max_records)
            if end > start:
                meta["last"], meta["released"] = now, end
            return [("paced", fsp.Record(self.values[i], None, None, f"paced@{i}"))
                    for i in range(start, end)]

        def finished(self):  # no snapshot/restore: these runs take no checkpoints
            return self.position >= len(self.values)

    obs: list = []
    env = fsp.StreamExecutionEnvironment(batch_size=cfg["batch"])
    source = PacedSource(events, cfg["rate"]) if cfg["rate"] else fsp.CollectionSource(events)
    stream = env.from_source(source).map(json.loads)
    if cfg["pipeline"] == "window":
        strategy = fsp.WatermarkStrategy.for_bounded_out_of_orderness(BOUND_S) \
            .with_timestamp_assigner(lambda e, _ts: e["ts"] / 1000.0)
        out = stream.assign_timestamps_and_watermarks(strategy).key_by(lambda e: e["key"]) \
            .window(fsp.TumblingEventTimeWindows.of(WINDOW_S)) \
            .aggregate(mean_agg_methods(fsp.AggregateFunction))
    else:
        out = stream.key_by(lambda e: e["key"]).random_cut_forest(["value"], **RCF_ARGS)
    out.add_sink(lambda v: obs.append((time.time(), v["seq"])))
    cpu.start()
    started = time.perf_counter()
    env.execute("bench")
    return time.perf_counter() - started, obs, meta, {}


APP_JOB = '''
import json

from forestream.processing import kinesis_client


def build(env, properties):
    client = kinesis_client()
    p = properties["bench"]
    (env.from_kinesis(p["input"], client, deserializer=json.loads)
        .key_by(lambda e: e["key"])
        .random_cut_forest(["value"], num_trees=int(p["num_trees"]),
                           sample_size=int(p["sample_size"]))
        .sink_to_kinesis(p["output"], client))
'''


def run_forestream_app(cfg, cpu: TreeCPU):
    """The rcf pipeline as a managed application on a server started here."""
    sys.path.insert(0, str(ROOT / "tests"))
    import urllib.request

    from forestream.processing.kinesis_io import kinesis_client
    from server_support import ServerProcess

    events = Path(cfg["data"]).read_text().splitlines()[:cfg["events"]]
    server = ServerProcess(Path(cfg["outdir"]) / "data").start()

    def rest(method, path, body=None):
        request = server.request(f"/api/v1/applications{path}", method=method,
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            raw = response.read()
            return json.loads(raw) if raw else None

    def put(batch):  # partition key: the event's key, as a producer would choose
        kinesis.put_records(StreamName="bench-in", Records=[
            {"Data": e.encode(), "PartitionKey": json.loads(e)["key"]} for e in batch])
    try:
        kinesis = kinesis_client(server.url)
        for name, shards in (("bench-in", 4), ("bench-out", 2)):
            kinesis.create_stream(StreamName=name, ShardCount=shards)
            kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                                     WaiterConfig={"Delay": 0.1})
        if not cfg["rate"]:  # throughput: everything is there before the start
            for start in range(0, len(events), 500):
                put(events[start:start + 500])
        rest("POST", "", {"name": "bench", "parallelism": cfg["parallelism"],
                          "max_parallelism": 4, "checkpoint_interval": 10.0,
                          "code": {"filename": "job.py", "text": APP_JOB},
                          "properties": {"bench": {"input": "bench-in", "output": "bench-out",
                                                   **RCF_ARGS}}})
        cpu.root = server.proc.pid
        cpu.start()
        started = time.perf_counter()
        cfg["launch"] = time.time()  # first output: since the start (not the server's)
        rest("POST", "/bench/start")
        meta: dict = {}
        if cfg["rate"]:  # released by wall clock once the application runs
            while not all(w.get("state") == "RUNNING" for w in (lambda r: r and (
                    r.get("workers") or [r]) or [{}])(rest("GET", "/bench")["runtime"])):
                time.sleep(0.05)

            def publish():
                meta["t0"] = t0 = time.time()
                sent = 0
                while sent < len(events):
                    due = min(len(events), int((time.time() - t0) * cfg["rate"]) + 1)
                    for start in range(sent, due, 500):
                        put(events[start:min(due, start + 500)])
                    if due > sent:
                        meta["last"], meta["released"] = time.time(), due
                    sent = due
                    time.sleep(0.005)
            threading.Thread(target=publish, daemon=True).start()
        obs: list = []
        iterators: dict[str, str] = {}
        deadline = time.monotonic() + cfg.get("timeout", 900)
        while len(obs) < len(events) and time.monotonic() < deadline:
            for shard in kinesis.list_shards(StreamName="bench-out")["Shards"]:
                sid = shard["ShardId"]
                iterator = iterators.get(sid) or kinesis.get_shard_iterator(
                    StreamName="bench-out", ShardId=sid,
                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
                iterators[sid] = page["NextShardIterator"]
                obs += [(r["ApproximateArrivalTimestamp"].timestamp(),
                         json.loads(r["Data"])["seq"]) for r in page["Records"]]
            time.sleep(0.05)
        wall = time.perf_counter() - started
        rest("POST", "/bench/stop", {"snapshot": False})
    finally:
        server.stop()
    return wall, obs, meta, {}


def run_pyflink(cfg, cpu: TreeCPU):
    from pyflink.common import Configuration, Duration, Types, WatermarkStrategy
    from pyflink.common.time import Time
    from pyflink.common.watermark_strategy import TimestampAssigner
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.datastream import functions as fn
    from pyflink.datastream.state import ValueStateDescriptor
    from pyflink.datastream.window import TumblingEventTimeWindows

    events = Path(cfg["data"]).read_text().splitlines()[:cfg["events"]]
    outdir, rate = cfg["outdir"], cfg["rate"]
    try:
        import forestream.rcf  # noqa: F401
        rcf_kind = "forestream RandomCutForest"
    except ImportError as exc:
        rcf_kind = f"STAND-IN (running z-score; forestream.rcf failed: {exc})"

    class Pacer(fn.MapFunction):
        def open(self, ctx):
            self.i, self.t0 = 0, None

        def map(self, value):
            now = time.time()
            if self.t0 is None:
                self.t0 = now
            delay = self.t0 + self.i / rate - now
            if delay > 0:
                time.sleep(delay)
            self.i += 1
            self.last = time.time()
            return value

        def close(self):
            Path(outdir, "pacer.json").write_text(json.dumps(
                {"t0": self.t0, "last": self.last, "released": self.i}))

    class Stamp(TimestampAssigner):
        def extract_timestamp(self, value, record_timestamp):
            return value["ts"]

    class Rcf(fn.KeyedProcessFunction):
        def open(self, ctx):  # forests in ValueState, or (--"dict") in a plain dict
            self.state = ctx.get_state(ValueStateDescriptor("forest", Types.PICKLED_BYTE_ARRAY()))
            self.forests = {} if cfg.get("dict") else None

        def process_element(self, e, ctx):
            forest = self.state.value() if self.forests is None else self.forests.get(e["key"])
            if rcf_kind.startswith("STAND-IN"):  # (n, mean, m2): Welford's running variance
                n, mu, m2 = forest or (0, 0.0, 0.0)
                x = e["value"]
                score = abs(x - mu) / ((m2 / n) ** 0.5 + 1e-9) if n > 1 else 0.0
                delta = x - mu
                mu += delta / (n + 1)
                forest = (n + 1, mu, m2 + delta * (x - mu))
            else:
                from forestream.rcf import RandomCutForest
                if forest is None:
                    forest = RandomCutForest(dimensions=1, time_decay=1e-5, random_seed=len(
                        e["key"]) * 7919 + int(e["key"][1:]), **RCF_ARGS)
                score = float(forest.score_and_update([[e["value"]]])[0])
            if self.forests is None:
                self.state.update(forest)
            else:
                self.forests[e["key"]] = forest
            yield {**e, "ANOMALY_SCORE": score}

    class Recorder(fn.FlatMapFunction):
        def open(self, ctx):
            self.obs = []

        def flat_map(self, value):
            self.obs.append((time.time(), value["seq"]))
            return []

        def close(self):
            Path(outdir, f"obs-{os.getpid()}-{id(self)}.json").write_text(json.dumps(self.obs))

    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(cfg["parallelism"])
    ds = env.from_collection(events, type_info=Types.STRING())
    if rate:
        ds = ds.map(Pacer(), output_type=Types.STRING()).set_parallelism(1)
    ds = ds.map(json.loads)
    if cfg["pipeline"] == "window":
        strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_seconds(BOUND_S)) \
            .with_timestamp_assigner(Stamp())
        out = ds.assign_timestamps_and_watermarks(strategy).key_by(lambda e: e["key"]) \
            .window(TumblingEventTimeWindows.of(Time.seconds(WINDOW_S))) \
            .aggregate(mean_agg_methods(fn.AggregateFunction))
    else:
        out = ds.key_by(lambda e: e["key"]).process(Rcf())
    out.flat_map(Recorder()).print()
    cpu.start()
    started = time.perf_counter()
    env.execute("bench")
    wall = time.perf_counter() - started
    obs = [o for f in Path(outdir).glob("obs-*.json") for o in json.loads(f.read_text())]
    pacer = Path(outdir, "pacer.json")
    meta = json.loads(pacer.read_text()) if pacer.exists() else {}
    return wall, obs, meta, {"rcf": rcf_kind} if cfg["pipeline"] == "rcf" else {}


def worker(cfg) -> None:
    cpu = TreeCPU()
    run = {"forestream": run_forestream, "forestream app": run_forestream_app,
           "PyFlink": run_pyflink}[cfg["engine"]]
    wall, obs, meta, extra = run(cfg, cpu)
    cpu_exec, cpu_total = cpu.stop()
    res = {"events": cfg["events"], "wall": wall, "cpu": cpu_exec, "cpu_total": cpu_total,
           "outputs": len(obs), **extra}
    if obs:
        res["first_output_s"] = min(a for a, _ in obs) - cfg["launch"]
    if cfg["rate"] and obs:
        lat = sorted(a - (meta["t0"] + s / cfg["rate"]) for a, s in obs)
        res["p50_ms"] = 1000 * lat[len(lat) // 2]
        res["p99_ms"] = 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        res["input_rate"] = meta["released"] / max(meta["last"] - meta["t0"], 1e-9)
    print(MARK + json.dumps(res), flush=True)


def launch(python: str, cfg: dict, timeout: float, env: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="fs-bench-") as outdir:
        cfg = {**cfg, "outdir": outdir, "launch": time.time()}
        try:
            proc = subprocess.run([python, __file__, "--worker", json.dumps(cfg)], env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
    lines = [x for x in proc.stdout.splitlines() if x.startswith(MARK)]
    if proc.returncode or not lines:
        return {"error": f"rc={proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"}
    return json.loads(lines[-1][len(MARK):])


def ensure_pyflink(venv: Path, console) -> str | None:
    """Path of the PyFlink venv's python, installing it on first use; None (+ reason) if not."""
    python = venv / "bin/python"
    if python.exists() and subprocess.run([str(python), "-c", "import pyflink.datastream, numba"],
                                          capture_output=True).returncode == 0:
        return str(python)
    console.print(f"installing {' '.join(PYFLINK_PKGS)} into {venv} (python3.11, <= 10 min)")
    try:
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PYFLINK_PKGS], check=True,
                       timeout=600, capture_output=True, text=True)
    except (OSError, subprocess.SubprocessError) as exc:
        err = getattr(exc, "stderr", "") or ""
        console.print(f"[red]PyFlink install failed: {exc} {err[-800:]}")
        return None
    return str(python)


def median_of(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[-1]
    keys = {k for r in ok for k, v in r.items() if isinstance(v, (int, float))}
    return {**ok[0], **{k: statistics.median(r[k] for r in ok if k in r) for k in keys}}


def profile_forestream(args, data: str) -> None:
    import cProfile
    import pstats

    for pipeline in ("window", "rcf"):
        cfg = {"engine": "forestream", "pipeline": pipeline, "batch": 1000, "rate": 0,
               "data": data, "events": args.events}
        prof, cpu = cProfile.Profile(), TreeCPU()
        prof.runcall(run_forestream, cfg, cpu)
        cpu.stop()
        print(f"--- cProfile, forestream {pipeline}, batch 1000, {args.events:,} events")
        pstats.Stats(prof).sort_stats("tottime").print_stats(14)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000, help="events per run")
    ap.add_argument("--rate", type=int, default=20_000, help="events/s in the fixed-rate runs")
    ap.add_argument("--repeats", type=int, default=1, help="runs per case; medians reported")
    ap.add_argument("--skip-pyflink", action="store_true", help="forestream only")
    ap.add_argument("--skip-app", action="store_true",
                    help="without the managed-application rows")
    ap.add_argument("--batch-sizes", default="100,1000,5000", help="forestream batch sizes")
    ap.add_argument("--parallelism", default="1,2", help="PyFlink parallelisms")
    ap.add_argument("--pipelines", default="window,rcf", help="window and/or rcf")
    ap.add_argument("--pyflink-rcf-events", type=int, default=50_000,
                    help="events for PyFlink's RCF runs (slow: forests are pickled into state "
                    "every bundle); 0: --events")
    ap.add_argument("--all-fixed", action="store_true",
                    help="fixed-rate runs for every PyFlink parallelism (default: p=1 only)")
    ap.add_argument("--pyflink-venv", type=Path, default=PYFLINK_VENV)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run")
    ap.add_argument("--profile", action="store_true",
                    help="also cProfile forestream's throughput runs in-process (batch 1000)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))

    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    console.print(f"machine: nproc={os.cpu_count()}, {os.uname().sysname} {os.uname().release}, "
                  f"load average {tuple(round(x, 2) for x in os.getloadavg())}; python "
                  f"{sys.version.split()[0]}")
    pyflink = None if args.skip_pyflink else ensure_pyflink(args.pyflink_venv, console)
    if pyflink:
        code = "from importlib.metadata import version as v; print(v('apache-flink'), v('numpy'))"
        version = subprocess.run([pyflink, "-c", code], capture_output=True, text=True).stdout
        console.print(f"PyFlink venv: {args.pyflink_venv} (apache-flink, numpy: {version.strip()})")
    elif not args.skip_pyflink:
        console.print("[red]PyFlink unavailable: forestream only (see the reason above)")
    pipelines, both = args.pipelines.split(","), {"window", "rcf"}
    # (engine, label, worker config, extra environment, pipelines, with a fixed-rate run)
    cases = [("forestream", f"batch={int(b)}", {"batch": int(b)}, {}, both, True)
             for b in args.batch_sizes.split(",")]
    cases.append(("forestream", "batch=1000 NUMBA_NUM_THREADS=1", {"batch": 1000},
                  {"NUMBA_NUM_THREADS": "1"}, {"rcf"}, True))
    if not args.skip_app:
        cases += [("forestream app", f"application p={p}", {"parallelism": p}, {}, {"rcf"},
                   True) for p in (1, 2)]
    if pyflink:
        cases += [("PyFlink", f"p={p}", {"parallelism": int(p)}, {}, both,
                   args.all_fixed or i == 0) for i, p in enumerate(args.parallelism.split(","))]
        cases.append(("PyFlink", "p=1 forests in a dict (no state)",
                      {"parallelism": 1, "dict": True}, {}, {"rcf"}, False))
    base_env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="fs-bench-data-") as tmp:
        data = str(Path(tmp, "events.jsonl"))
        Path(data).write_text("\n".join(make_events(args.events)) + "\n")
        console.print(f"config: {args.events:,} events, {KEYS} keys, event time step {STEP_MS} "
                      f"ms, jitter <= {JITTER_MS} ms, window {WINDOW_S} s, bound {BOUND_S} s, "
                      f"RCF {RCF_ARGS}, fixed rate {args.rate:,}/s, repeats {args.repeats}")
        if args.profile:
            profile_forestream(args, data)
        for pipeline in pipelines:
            for engine, label, extra, env, which, fixed in cases:
                if pipeline not in which:
                    continue
                for mode, rate in (("throughput", 0), ("fixed", args.rate))[:1 + fixed]:
                    n = args.pyflink_rcf_events if engine == "PyFlink" and pipeline == "rcf" \
                        else 0
                    cfg = {"engine": engine, "pipeline": pipeline, "rate": rate, "data": data,
                           "events": n or args.events, **extra}
                    python = pyflink if engine == "PyFlink" else sys.executable
                    runs = [launch(python, cfg, args.timeout, {**base_env, **env})
                            for _ in range(args.repeats)]
                    res = results[pipeline, label, mode] = median_of(runs)
                    console.print(f"  {pipeline:6} {engine:10} {label:32} {mode:10} "
                                  + json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                                for k, v in res.items()}), soft_wrap=True)
    table = Table(title=f"Stream processing, medians of {args.repeats} run(s) per row")
    for col in ("engine", "pipeline", "events", "events/s", "events per CPU-s",
                f"p99 latency @ {args.rate:,}/s (p50)", "first output after (s)",
                "fs batch=1000 ÷ this (events/s, per CPU-s)"):
        table.add_column(col, justify="left" if col in ("engine", "pipeline") else "right")
    for pipeline in pipelines:
        ref = results.get((pipeline, "batch=1000", "throughput"), {})
        for engine, label, _, _, which, _ in cases:
            if pipeline not in which:
                continue
            thr, fix = results[pipeline, label, "throughput"], results.get(
                (pipeline, label, "fixed"))
            if "error" in thr:
                table.add_row(f"{engine} {label}", pipeline, "error", thr["error"][-60:])
                continue
            n = thr["events"]
            eps, epc = n / thr["wall"], n / max(thr["cpu"], 1e-9)
            first, p99 = f"{thr.get('first_output_s', float('nan')):.2f} (bounded)", "-"
            if fix is not None:
                first = f"{fix.get('first_output_s', float('nan')):.2f}"
                p99 = f"{fix['p99_ms']:,.0f} ms (p50 {fix['p50_ms']:,.0f})" if "p99_ms" in fix \
                    else fix.get("error", "no output")[-40:]
                if fix.get("input_rate", args.rate) < 0.95 * args.rate:
                    p99 += f" (input only {fix['input_rate']:,.0f}/s)"
            ratio = "-" if "wall" not in ref else \
                f"{ref['events'] / ref['wall'] / eps:.2f}, {ref['events'] / ref['cpu'] / epc:.2f}"
            if "STAND-IN" in thr.get("rcf", ""):
                label += " (STAND-IN RCF)"
            table.add_row(f"{engine} {label}", pipeline, f"{n:,}", f"{eps:,.0f}",
                          f"{epc:,.0f}", p99, first, ratio)
    console.print(table)
    for pipeline in pipelines:
        fs, fix, pf = (results.get((pipeline, k, m), {}) for k, m in (
            ("batch=1000", "throughput"), ("batch=1000", "fixed"), ("p=1", "throughput")))
        if "cpu" in fs and "cpu" in pf:
            console.print(f"{pipeline}: forestream batch=1000 / PyFlink p=1 events per CPU-s = "
                          f"{fs['events'] / fs['cpu'] / (pf['events'] / pf['cpu']):.1f}x (target "
                          f">= 3x); forestream first output at the fixed rate after "
                          f"{fix.get('first_output_s', float('nan')):.2f} s (target <= 2 s)")
    console.print("events/s = events / execute() wall; CPU = user+sys of the worker and its "
                  "descendants during execute(); p99 and first output (since the worker's launch) "
                  "from the fixed-rate run, else from the bounded run. forestream app: wall from "
                  "POST start to the last score in the output stream (worker launch included; "
                  "first output since POST start too); "
                  "CPU of the server and its workers; latency = the score's arrival in the "
                  "output stream - the event's scheduled release (published once the "
                  "application runs).")
    console.print(f"load average at the end: {tuple(round(x, 2) for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
