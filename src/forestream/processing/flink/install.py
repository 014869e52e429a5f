"""Where the pieces of the Flink runtime are, and how they are built, once, on demand.

Three pieces, all outside the main virtual environment:

* **the Flink virtual environment** (``.venv-flink`` beside ``pyproject.toml`` in a
  checkout; ``$FORESTREAM_FLINK_VENV`` to choose another): ``apache-flink`` pins versions
  of apache-beam, pandas and pyarrow that conflict with forestream's own environment, so
  PyFlink gets one of its own, with forestream installed into it (no extras: numpy and
  numba for the RCF operators come with it);
* **Flink's home**: the ``pyflink`` package of that environment, which carries Flink's
  ``bin/`` scripts, ``conf/`` and the jars (``lib/flink-dist*.jar``, ``opt/``);
* **the connector jar** (``build/flink/forestream-flink-connector.jar``): forestream's
  Kinesis-API source and sink (``java/flink-connector``), compiled with ``javac`` against
  Flink's jars; rebuilt when a source file is newer than the jar.

``make flink`` (and so ``make test``) builds them; otherwise the first call that needs one
builds it, printing what it does, as ``python -m forestream.processing.flink``
does. Builds take a file lock, so parallel test workers build once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

#: What the Flink environment installs (Flink 2.3: Java 11 to 21).
FLINK_REQUIREMENT = "apache-flink==2.3.*"
VENV_ENV = "FORESTREAM_FLINK_VENV"
JAR_NAME = "forestream-flink-connector.jar"
_STAMP = ".forestream-installed"


class FlinkSetupError(RuntimeError):
    """A piece of the Flink runtime is missing and cannot be built here (the message says
    what to install or set)."""


def flink_python() -> Path:
    """The Python of the Flink environment (created on first use)."""
    venv = venv_dir()
    if not _venv_ready(venv):
        build_venv(venv)
    return venv / "bin" / "python"


def flink_home() -> Path:
    """Flink's home: the ``pyflink`` package folder of the Flink environment."""
    venv = venv_dir()
    if not _venv_ready(venv):
        build_venv(venv)
    homes = sorted(venv.glob("lib/python3*/site-packages/pyflink"))
    if not homes or not (homes[0] / "bin" / "flink").exists():
        raise FlinkSetupError(f"{venv} has no pyflink with bin/flink; rebuild it: "
                              f"rm -rf {venv} && make flink")
    return homes[0]


def connector_jar() -> Path:
    """The connector jar, compiled first if it is missing or older than its sources."""
    jar = jar_path()
    sources = sorted(java_sources().rglob("*.java"))
    if jar.exists() and all(s.stat().st_mtime <= jar.stat().st_mtime for s in sources):
        return jar
    with _locked(jar.parent / ".build.lock"):
        if jar.exists() and all(s.stat().st_mtime <= jar.stat().st_mtime for s in sources):
            return jar  # another process built it meanwhile
        build_jar(jar, sources)
    return jar


def java() -> Path:
    """The ``java`` that runs Flink: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    return _jdk_tool("java")


# ------------------------------------------------------------------ locations
def project_root() -> Path | None:
    """The checkout this module runs from (None when forestream is installed from a wheel)."""
    root = Path(__file__).resolve().parents[4]
    if (root / "pyproject.toml").exists() and (root / "java" / "flink-connector").is_dir():
        return root
    return None


def venv_dir() -> Path:
    configured = os.environ.get(VENV_ENV)
    if configured:
        return Path(configured)
    root = project_root()
    if root is not None:
        return root / ".venv-flink"
    return Path.home() / ".local" / "share" / "forestream" / "flink-venv"


def jar_path() -> Path:
    root = project_root()
    return (root / "build" / "flink" if root else venv_dir() / "jars") / JAR_NAME


def java_sources() -> Path:
    root = project_root()
    if root is None:
        raise FlinkSetupError("the connector's Java sources ship with forestream's source "
                              "tree: run from a checkout (git clone ...; make flink)")
    return root / "java" / "flink-connector" / "src"


# ------------------------------------------------------------------ building
def build_venv(venv: Path) -> None:
    """Create the Flink environment: apache-flink, then forestream itself (editable)."""
    root = project_root()
    with _locked(venv.parent / f"{venv.name}.lock"):
        if _venv_ready(venv):
            return
        _say(f"creating {venv} with {FLINK_REQUIREMENT} and forestream (once; a few "
             "minutes, about 1 GB)")
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(venv)], "creating the Flink virtual environment")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
               "--disable-pip-version-check"]
        _run([*pip, "--upgrade", "pip"], "upgrading pip in the Flink environment")
        _run([*pip, FLINK_REQUIREMENT], f"installing {FLINK_REQUIREMENT}")
        _run([*pip, "-e", str(root)] if root else [*pip, "forestream"],
             "installing forestream into the Flink environment")
        (venv / _STAMP).write_text(FLINK_REQUIREMENT + "\n")


def build_jar(jar: Path, sources: list[Path]) -> None:
    """Compile ``sources`` against Flink's jars with ``javac`` and pack them into ``jar``."""
    javac = _jdk_tool("javac")
    home = flink_home()
    classpath = os.pathsep.join(str(p) for p in sorted((home / "lib").glob("*.jar")))
    classes = jar.parent / "classes"
    shutil.rmtree(classes, ignore_errors=True)
    classes.mkdir(parents=True)
    _say(f"compiling the Flink connector ({len(sources)} Java files) into {jar}")
    _run([str(javac), "--release", "11", "-nowarn", "-cp", classpath, "-d", str(classes),
          *map(str, sources)], "compiling the Flink connector")
    partial = jar.with_suffix(".jar.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n"
                     "Created-By: forestream\r\n\r\n")
        for path in sorted(classes.rglob("*.class")):
            out.write(path, path.relative_to(classes).as_posix())
    partial.replace(jar)


def _venv_ready(venv: Path) -> bool:
    stamp = venv / _STAMP
    return stamp.exists() and stamp.read_text().strip() == FLINK_REQUIREMENT


def _jdk_tool(name: str) -> Path:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / name).exists():
        return Path(java_home) / "bin" / name
    found = shutil.which(name)
    if found is None:
        raise FlinkSetupError(f"'{name}' not found: Flink needs a JDK 11 to 21 (e.g. "
                              "apt-get install openjdk-17-jdk-headless), or set JAVA_HOME")
    return Path(found)


def _run(command: list[str], what: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise FlinkSetupError(f"{what} failed (exit {proc.returncode}):\n"
                              f"{(proc.stdout + proc.stderr)[-4000:]}")


def _say(message: str) -> None:
    print(f"forestream: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main() -> None:
    """Build whatever is missing and print where the pieces are."""
    try:
        print(f"python  {flink_python()}\nhome    {flink_home()}\njar     {connector_jar()}")
    except FlinkSetupError as exc:
        print(f"forestream: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
