"""Model serving latency: forestream endpoints vs ``mlflow models serve``, side by side.

One small scikit-learn model (by default a LogisticRegression on 8 features, fixed seed;
``--model forest`` for a 20-tree RandomForest, ``--model pipeline`` for StandardScaler +
LogisticRegression) is trained and saved as an MLflow model
directory (``mlflow.sklearn.save_model``, its default skops format) inside a cached venv with
MLflow and the same scikit-learn version as forestream's venv
(~/.cache/forestream-bench/mlflow-venv; created on first use, MLflow is never installed
into forestream's venv). Both peers then serve that same directory on 127.0.0.1:

* MLflow: ``mlflow models serve -m DIR -p PORT --env-manager local`` with MLflow's default
  worker settings (one uvicorn worker; ``--mlflow-workers N`` passes ``--workers N``),
  ready once ``GET /ping`` answers 200; invoked at ``POST /invocations`` with
  ``{"inputs": [[f1, ..., f8]]}``, the documented tensor input of a model whose signature
  was inferred from a numpy array.
* forestream: ``forestream server`` on a fresh data dir; the directory is uploaded as a
  tar.gz (``POST /api/v1/models/uploads``), imported as version 1 of group ``bench``
  (MLflow 3's default skops format: no trust needed), and deployed as endpoint ``bench`` with one
  variant of ``--fs-workers`` workers (default 2); ready once the endpoint is
  ``InService``; invoked at ``POST /endpoints/bench/invocations`` with ``[[f1, ..., f8]]``.

Before measuring, both peers answer the same check rows, one request per row, and must
agree with scikit-learn's own predictions; forestream is also asked once through boto3's
``sagemaker-runtime`` client (``invoke_endpoint``). Then --clients closed-loop client
processes (benchmarks/_loadgen.py; one keep-alive connection each) send single-row
requests back to back: --warmup seconds unrecorded, --seconds measured. Peers alternate
within each of --runs runs (the order flips every run); the table shows medians over runs
of requests/s, p50, p99 and max latency, the CPU that the server's process tree and the
clients used (% of one core), and the errors summed over runs. Ratios: throughput =
forestream requests/s / MLflow's; p99 = forestream p99 / MLflow's (below 1 is better).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import io
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

from _loadgen import run_load
from rich.console import Console
from rich.markup import escape
from rich.table import Table

CACHE = Path.home() / ".cache" / "forestream-bench"
MLFLOW_VENV = CACHE / "mlflow-venv"
MLFLOW_SPEC = "mlflow==3.17.*"
HERE = Path(__file__).resolve().parent.parent
FORESTREAM = Path(sys.executable).with_name("forestream")
HOST = "127.0.0.1"
console = Console(width=None if sys.stdout.isatty() else 160)
COLUMNS = ["requests/s", "p50 ms", "p99 ms", "max ms", "errors", "server CPU%", "client CPU%"]

# Runs in the MLflow venv: trains, saves, and reports check rows with sklearn's answers.
TRAIN_SCRIPT = r"""
import json, sys, time
import mlflow, mlflow.sklearn, numpy as np, sklearn
from mlflow.models import infer_signature
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

out_dir, kind = sys.argv[1], sys.argv[2]
X, y = make_classification(n_samples=2000, n_features=8, n_informative=5, random_state=7)
model = {"forest": lambda: RandomForestClassifier(n_estimators=20, max_depth=8, random_state=7),
         "pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
         "logreg": lambda: LogisticRegression(max_iter=1000)}[kind]()
model.fit(X, y)
mlflow.sklearn.save_model(model, out_dir,  # MLflow 3's default format: skops
                          signature=infer_signature(X[:5], model.predict(X[:5])))
check = X[1990:].tolist()
for _ in range(50):
    model.predict(X[:1])
t0, n = time.perf_counter(), 1000
for _ in range(n):
    model.predict(X[:1])
print(json.dumps({"model": repr(model), "load_row": X[0].tolist(), "check_rows": check,
                  "expected": model.predict(np.array(check)).tolist(),
                  "predict_ms": (time.perf_counter() - t0) / n * 1e3,
                  "mlflow": mlflow.__version__, "sklearn": sklearn.__version__,
                  "numpy": np.__version__}))
"""


class BenchError(RuntimeError):
    """A peer could not be set up or answered wrongly."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


#: forestream's access token: the benchmark starts its server with it (FORESTREAM_TOKEN)
TOKEN = secrets.token_urlsafe(16)


def http(method: str, url: str, body: bytes | None = None,
         content_type: str = "application/json", timeout: float = 30) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if body:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(method: str, url: str, payload=None, expect: int = 200):
    status, raw = http(method, url, None if payload is None else json.dumps(payload).encode())
    if status != expect:
        raise BenchError(f"{method} {url} -> {status}: {raw[:500].decode(errors='replace')}")
    return json.loads(raw)


class Server:
    """A peer's server process (own session, so its whole process group is stopped)."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.log = name, log
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        LIVE.append(self)

    def wait_ready(self, url: str, timeout: float = 180) -> float:
        started, deadline = time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if http("GET", url, timeout=2)[0] == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not become ready at {url}: {self.tail()}")

    def tail(self, chars: int = 1500) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        if self in LIVE:
            LIVE.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass


LIVE: list[Server] = []


def stop_all() -> None:
    for server in list(LIVE):
        server.stop()


def predictions(raw: bytes) -> list:
    """The predicted values of an answer: MLflow's {"predictions": [...]} or a bare list."""
    value = json.loads(raw)
    if isinstance(value, dict):
        for key in ("predictions", "outputs", "prediction"):
            if key in value:
                value = value[key]
                break
    return value if isinstance(value, list) else [value]


def ensure_mlflow_venv(sklearn_version: str) -> Path:
    python = MLFLOW_VENV / "bin" / "python"
    if not (MLFLOW_VENV / "bin" / "mlflow").exists():
        console.print(f"installing {MLFLOW_SPEC} and scikit-learn=={sklearn_version} into "
                      f"{MLFLOW_VENV} ...", markup=False)
        CACHE.mkdir(parents=True, exist_ok=True)
        for cmd in ([sys.executable, "-m", "venv", str(MLFLOW_VENV)],
                    [str(python), "-m", "pip", "install", "-q", MLFLOW_SPEC,
                     f"scikit-learn=={sklearn_version}"]):
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode:
                raise BenchError(f"{' '.join(cmd)} failed: {result.stderr[-800:]}")
    return python


class MlflowPeer:
    name = "mlflow"

    def __init__(self, model_dir: Path, tmp: Path, workers: int | None) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        argv = [str(MLFLOW_VENV / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir),
                "-h", HOST, "-p", str(self.port), "--env-manager", "local"]
        if workers:
            argv += ["--workers", str(workers)]
        self.command = "mlflow " + " ".join(argv[1:]).replace(str(model_dir), "DIR")
        # As if the venv were activated (MLflow runs `uvicorn` from PATH); no network
        # here, so keep MLflow's telemetry from trying to reach out.
        env = {**os.environ, "PATH": f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
               "VIRTUAL_ENV": str(MLFLOW_VENV), "MLFLOW_DISABLE_TELEMETRY": "true",
               "DO_NOT_TRACK": "true"}
        self.server = Server("mlflow", argv, tmp / "mlflow.log", env)
        self.ready_s = self.server.wait_ready(f"{self.url}/ping")
        self.path, self.headers = "/invocations", {"Content-Type": "application/json"}

    def body(self, rows: list[list[float]]) -> bytes:
        return json.dumps({"inputs": rows}).encode()

    def invoke(self, rows: list[list[float]]) -> list:
        status, raw = http("POST", self.url + self.path, self.body(rows))
        if status != 200:
            raise BenchError(f"mlflow answered {status}: {raw[:500]!r}")
        return predictions(raw)


class ForestreamPeer:
    name = "forestream"

    def __init__(self, model_dir: Path, tmp: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        data_dir = tmp / "forestream-data"
        argv = [str(FORESTREAM), "server", "--host", HOST, "--port", str(self.port),
                "--data-dir", str(data_dir)]
        self.command = f"forestream server --host {HOST} --port PORT --data-dir TMP"
        self.server = Server("forestream", argv, tmp / "forestream.log",
                             {**os.environ, "FORESTREAM_TOKEN": TOKEN})
        started = time.monotonic()
        self.server.wait_ready(f"{self.url}/health")
        api = f"{self.url}/api/v1"
        status, raw = http("POST", f"{api}/models/uploads?filename=model.tar.gz",
                           tar_gz(model_dir), "application/octet-stream", timeout=120)
        if status != 201:
            raise BenchError(f"upload -> {status}: {raw[:500]!r}")
        upload = json.loads(raw)["upload_id"]
        self.version = http_json("POST", f"{api}/models/groups/bench/versions",
                                 {"source": f"upload://{upload}"}, 201)
        model_ref = f"bench:{self.version['version']}"
        http_json("POST", f"{api}/endpoints", {"name": "bench", "variants": [
            {"variant_name": "AllTraffic", "model": model_ref, "weight": 1,
             "workers": workers}]}, 201)
        deadline = time.monotonic() + 180
        while True:
            endpoint = http_json("GET", f"{api}/endpoints/bench")
            if endpoint.get("status") == "InService":
                break
            if endpoint.get("status") == "Failed" or time.monotonic() > deadline:
                raise BenchError(f"endpoint not InService: {json.dumps(endpoint)[:800]}\n"
                                 f"{self.server.tail()}")
            time.sleep(0.1)
        self.ready_s = time.monotonic() - started
        self.path, self.headers = "/endpoints/bench/invocations", {
            "Content-Type": "application/json"}

    def body(self, rows: list[list[float]]) -> bytes:
        return json.dumps(rows).encode()

    def invoke(self, rows: list[list[float]]) -> list:
        status, raw = http("POST", self.url + self.path, self.body(rows))
        if status != 200:
            raise BenchError(f"forestream answered {status}: {raw[:500]!r}")
        return predictions(raw)

    def invoke_boto3(self, rows: list[list[float]]) -> list:
        import boto3
        runtime = boto3.client("sagemaker-runtime", endpoint_url=self.url,
                               region_name="us-east-1", aws_access_key_id="bench",
                               aws_secret_access_key="bench")
        answer = runtime.invoke_endpoint(EndpointName="bench", ContentType="application/json",
                                         Body=json.dumps(rows).encode())
        return predictions(answer["Body"].read())


def tar_gz(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


def check_answers(peers: list, model: dict) -> None:
    """Each peer, one row per request, must give scikit-learn's predictions."""
    rows, expected = model["check_rows"], model["expected"]
    for peer in peers:
        got = [peer.invoke([row])[0] for row in rows]
        ok = [float(g) for g in got] == [float(e) for e in expected]
        console.print(f"check: {peer.name:10} {len(rows)} single-row requests -> {got} "
                      f"{'== sklearn' if ok else '!= sklearn ' + str(expected)}", markup=False)
        if not ok:
            raise BenchError(f"{peer.name} predictions differ from scikit-learn's")
        if isinstance(peer, ForestreamPeer):
            via = peer.invoke_boto3(rows)
            ok = [float(g) for g in via] == [float(e) for e in expected]
            console.print(f"check: forestream boto3 sagemaker-runtime invoke_endpoint, "
                          f"{len(rows)} rows in one request -> {via} "
                          f"{'== sklearn' if ok else '!= sklearn'}", markup=False)
            if not ok:
                raise BenchError("forestream via boto3 differs from scikit-learn's")


def measure(peer, row: list[float], args) -> dict[str, float]:
    result = run_load(HOST, peer.port, peer.path, peer.body([row]), peer.headers,
                      clients=args.clients, warmup=args.warmup, seconds=args.seconds,
                      server_pid=peer.server.proc.pid)
    summary = result.summary()
    errors = f", error samples {result.error_samples}" if result.errors else ""
    console.print(f"  {peer.name:10} {summary['requests/s']:8,.0f} requests/s  p50 "
                  f"{summary['p50 ms']:6.2f} ms  p99 {summary['p99 ms']:6.2f} ms  max "
                  f"{summary['max ms']:7.1f} ms  errors {result.errors}  server CPU "
                  f"{summary['server CPU%']:.0f}%  clients CPU {summary['client CPU%']:.0f}%"
                  f"  load {os.getloadavg()[0]:.1f}{errors}", markup=False)
    return summary


def output(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10, help="measured seconds (default 10)")
    ap.add_argument("--warmup", type=float, default=2, help="unrecorded seconds (default 2)")
    ap.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    ap.add_argument("--runs", type=int, default=3, help="runs per peer; medians (default 3)")
    ap.add_argument("--only", choices=["forestream", "mlflow"], help="one peer only")
    ap.add_argument("--model", choices=["logreg", "forest", "pipeline"], default="logreg",
                    help="LogisticRegression (default), a 20-tree RandomForest, or a "
                         "StandardScaler + LogisticRegression pipeline")
    ap.add_argument("--fs-workers", type=int, default=2,
                    help="workers of the forestream variant (default 2)")
    ap.add_argument("--mlflow-workers", type=int, default=None,
                    help="pass --workers N to mlflow models serve (default: MLflow's, 1)")
    ap.add_argument("--json", type=Path, help="write the numbers to this file")
    args = ap.parse_args()

    sklearn_version = output([sys.executable, "-c", "import sklearn; print(sklearn.__version__)"])
    python = ensure_mlflow_venv(sklearn_version)
    tmp = Path(tempfile.mkdtemp(prefix="fs-serving-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # also after errors and Ctrl-C
    model_dir = tmp / "model"
    trained = subprocess.run([str(python), "-c", TRAIN_SCRIPT, str(model_dir), args.model],
                             capture_output=True, text=True,
                             env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    if trained.returncode:
        raise BenchError(f"training in the MLflow venv failed: {trained.stderr[-1500:]}")
    model = json.loads(trained.stdout.strip().splitlines()[-1])
    if model["sklearn"] != sklearn_version:
        console.print(f"[yellow]note: scikit-learn {model['sklearn']} in the MLflow venv, "
                      f"{sklearn_version} in forestream's")
    mlflow_uvicorn = output([str(python), "-c", "import uvicorn; print(uvicorn.__version__)"])
    git = output(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"])
    source = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(
        (HERE / "src" / "forestream").rglob("*.py")))).hexdigest()[:12]
    dirty = " + uncommitted changes" if output(["git", "-C", str(HERE), "status",
                                                 "--porcelain"]) else ""
    console.print(
        f"machine: nproc={os.cpu_count()}, {platform.machine()}, Linux {platform.release()}, "
        f"load average at start {tuple(round(x, 2) for x in os.getloadavg())}\n"
        f"python {platform.python_version()}; forestream {metadata.version('forestream')} (git "
        f"{git}{dirty}; sha256 of src/forestream/**/*.py {source}), starlette "
        f"{metadata.version('starlette')}, uvicorn "
        f"{metadata.version('uvicorn')}, scikit-learn {sklearn_version}, numpy "
        f"{metadata.version('numpy')}; MLflow {model['mlflow']} (venv {MLFLOW_VENV}: "
        f"scikit-learn {model['sklearn']}, numpy {model['numpy']}, uvicorn {mlflow_uvicorn})\n"
        f"model: {model['model']} on 8 features, saved by mlflow.sklearn.save_model "
        f"(skops); in-process predict of one row: {model['predict_ms']:.3f} ms\n"
        f"workload: {args.clients} client processes, one keep-alive connection each, single-row "
        f"JSON requests back to back; {args.warmup:g} s warm-up + {args.seconds:g} s measured, "
        f"{args.runs} run(s), peers alternating", markup=False)

    peers = []
    try:
        if args.only != "forestream":
            peers.append(MlflowPeer(model_dir, tmp, args.mlflow_workers))
            console.print(f"mlflow: `{peers[-1].command}` (workers: "
                          f"{args.mlflow_workers or '1, the default'}; timeout 60 s default), "
                          f"ready in {peers[-1].ready_s:.1f} s", markup=False)
        if args.only != "mlflow":
            peers.append(ForestreamPeer(model_dir, tmp, args.fs_workers))
            console.print(f"forestream: `{peers[-1].command}`; model bench:"
                          f"{peers[-1].version['version']} imported, endpoint bench (1 variant, "
                          f"{args.fs_workers} workers) InService {peers[-1].ready_s:.1f} s after "
                          f"start", markup=False)
        check_answers(peers, model)
        runs: dict[str, list[dict[str, float]]] = {peer.name: [] for peer in peers}
        for number in range(args.runs):
            console.print(f"run {number + 1}/{args.runs}")
            for peer in peers if number % 2 == 0 else peers[::-1]:
                runs[peer.name].append(measure(peer, model["load_row"], args))
    finally:
        stop_all()

    medians = {name: {column: (sum if column == "errors" else statistics.median)(
        [run[column] for run in rows]) for column in rows[0]} for name, rows in runs.items()}
    ratios = {}
    if len(medians) == 2:
        fs, ml = medians["forestream"], medians["mlflow"]
        ratios = {"throughput x": fs["requests/s"] / ml["requests/s"],
                  "p99 ratio": fs["p99 ms"] / ml["p99 ms"]}
    what = f"median of {args.runs} runs" if args.runs > 1 else "one run"
    table = Table(title=f"Single-row JSON invocations, {args.clients} clients, "
                        f"{args.seconds:g} s ({what})",
                  caption="errors: total over runs; CPU in % of one core (server = its whole "
                          "process tree); throughput × = forestream requests/s ÷ this row's; "
                          "p99 ratio = forestream p99 ÷ this row's")
    for column in ["peer", *COLUMNS, "throughput ×", "p99 ratio"]:
        table.add_column(column, justify="left" if column == "peer" else "right")
    for name, row in medians.items():
        cells = [f"{row[c]:,.0f}" if c in ("requests/s", "errors") or "CPU" in c
                 else f"{row[c]:.2f}" for c in COLUMNS]
        other = medians.get("forestream")
        table.add_row(name, *cells,
                      f"{other['requests/s'] / row['requests/s']:.2f}" if other else "-",
                      f"{other['p99 ms'] / row['p99 ms']:.2f}" if other else "-")
    console.print(table)
    if ratios:
        pairs = [f"{f['requests/s'] / m['requests/s']:.2f}×"
                 for f, m in zip(runs["forestream"], runs["mlflow"], strict=True)]
        console.print(f"throughput ratio of each run (forestream ÷ mlflow): {', '.join(pairs)}",
                      markup=False)
    console.print(f"load average at the end: {tuple(round(x, 2) for x in os.getloadavg())}",
                  markup=False)
    if args.json:
        args.json.write_text(json.dumps({
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "versions": {"forestream": metadata.version("forestream"), "git": git + dirty,
                         "source_sha256": source,
                         "mlflow": model["mlflow"], "scikit-learn": sklearn_version,
                         "python": platform.python_version()},
            "model": {k: model[k] for k in ("model", "predict_ms")},
            "runs": runs, "medians": medians, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the servers
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with `&`
    try:
        main()
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
    except BenchError as exc:
        stop_all()
        console.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
