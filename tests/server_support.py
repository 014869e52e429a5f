"""A real ``forestream server`` process for tests (importable: tests/ is on sys.path)."""

from __future__ import annotations

import base64
import json
import os
import secrets
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
    """A ``forestream server`` subprocess on a free port, restartable on the same data.

    ``token``: the access token it is started with (a random one by default; None lets
    the server create its own in its data directory, read back after the start).
    ``allow_code``: start it with FORESTREAM_ALLOW_CODE=1, as the tests of applications
    and trusted models need (the default server refuses clients' code).
    """

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = (), *, token: str | None | bool = True,
                 allow_code: bool = True) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(16) if token is True else (token or None)
        extra = {"FORESTREAM_STATUS_DELAY": "0.2"}
        if self.token:
            extra["FORESTREAM_TOKEN"] = self.token
        if allow_code:
            extra["FORESTREAM_ALLOW_CODE"] = "1"
        base = {k: v for k, v in os.environ.items() if k != "FORESTREAM_TOKEN"}
        self.env = {**base, **extra, **(env or {})}
        self.args = args
        self.proc: subprocess.Popen | None = None

    @property
    def auth(self) -> dict[str, str]:
        """The header that carries this server's access token."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, path: str, data: bytes | None = None, method: str | None = None,
                headers: dict[str, str] | None = None) -> urllib.request.Request:
        """A request to ``path`` on this server carrying its access token."""
        return urllib.request.Request(self.url + path, data=data, method=method,
                                      headers={**self.auth, **(headers or {})})

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
            if self.token is None and (Path(self.data_dir) / "access-token").exists() and \
                    "FORESTREAM_NO_TOKEN" not in self.env:
                self.token = (Path(self.data_dir) / "access-token").read_text().strip()
            try:
                raw = urllib.request.urlopen(self._health_request(), timeout=1).read()
                if json.loads(raw).get("data_dir") == expected:
                    return True
                self.kill()  # someone else's server on our port
                return False
            except OSError:
                time.sleep(0.05)
        self.kill()
        return False

    def _health_request(self) -> urllib.request.Request:
        """/health, authorised to see the data directory: the token, else the key pair."""
        key = self.env.get("FORESTREAM_ACCESS_KEY_ID")
        secret = self.env.get("FORESTREAM_SECRET_ACCESS_KEY")
        if self.token is None and key and secret:
            basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
            return urllib.request.Request(self.url + "/health",
                                          headers={"Authorization": f"Basic {basic}"})
        return self.request("/health")

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


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (its own CA) and its key, as PEM files
    in ``folder``: for a server's --tls-port and the clients that trust it."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


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
