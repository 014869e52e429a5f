"""A real ``forestream server`` process for tests (importable: tests/ is on sys.path)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("forestream")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A ``forestream server`` subprocess on a free port, restartable on the same data."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "FORESTREAM_STATUS_DELAY": "0.2", **(env or {})}
        self.args = args
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        for attempt in range(3):
            if attempt:  # the port was taken meanwhile (parallel test workers): another one
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
            cmd = [str(SCRIPT), "server", "--port", str(self.port), "--data-dir",
                   str(self.data_dir), *self.args]
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            if self._wait_healthy():
                return self
        raise RuntimeError(f"server did not start: {self.proc.stderr.read().decode()[-2000:]}")

    def _wait_healthy(self) -> bool:
        """True once *this* server answers (/health names its data directory: another
        test's server that grabbed the port must not be mistaken for ours)."""
        deadline = time.monotonic() + 30
        expected = str(Path(self.data_dir).resolve())
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                raw = urllib.request.urlopen(f"{self.url}/health", timeout=1).read()
                if json.loads(raw).get("data_dir") == expected:
                    return True
                self.kill()  # someone else's server on our port
                return False
            except OSError:
                time.sleep(0.05)
        self.kill()
        return False

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def active_consumer(kinesis, stream: str, name: str, seconds: float = 10.0) -> dict:
    """Register an enhanced fan-out consumer on ``stream`` and wait until it is ACTIVE."""
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=name)["Consumer"]
    deadline = time.time() + seconds
    while kinesis.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])[
            "ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.time() < deadline, f"consumer {name} not ACTIVE after {seconds} s"
        time.sleep(0.1)
    return consumer
