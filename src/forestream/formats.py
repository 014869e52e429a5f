"""The data directory's format version, and how a server moves it forward.

Everything a server keeps under its data directory (stream logs and metadata, the
application folders and checkpoints, the model registry, analyses) is written in one
*data format*, numbered :data:`DATA_FORMAT`. The number is stored in ``<data_dir>/FORMAT``
when the directory is first used. A server opening a directory of an older format runs
the upgrade steps of :data:`UPGRADES` in order (each rewrites what changed, then bumps the
number); a directory of a newer format is refused, naming both numbers, so an older
release never misreads data. Files that travel on their own carry their own version too
(checkpoints: ``FSCKPT2s``; forests: ``FSRCF\\x01``; detectors: ``FSTRD\\x01``). The
formats and their history are listed in docs/architecture.md.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> check_data_dir(folder)
1
>>> (folder / "FORMAT").read_text().strip()
'{"forestream_data_format": 1}'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from forestream.durable import write_atomically
from forestream.errors import ConflictError

DATA_FORMAT = 1
FORMAT_FILE = "FORMAT"
#: format N -> the step that upgrades a directory of format N to N + 1 (none yet: format
#: 1 is the first released one).
UPGRADES: dict[int, Callable[[Path], None]] = {}


class DataFormatError(ConflictError):
    """The data directory was written by a newer forestream, or is unreadable."""


def check_data_dir(data_dir: Path) -> int:
    """The directory's format after making it current (recording it on first use)."""
    path = data_dir / FORMAT_FILE
    try:
        found = int(json.loads(path.read_text())["forestream_data_format"])
    except FileNotFoundError:
        found = DATA_FORMAT
        write_atomically(path, json.dumps({"forestream_data_format": DATA_FORMAT}) + "\n")
    except (ValueError, KeyError, TypeError):
        raise DataFormatError(f"{path} is not a forestream format file; it should hold "
                              f'{{"forestream_data_format": {DATA_FORMAT}}}') from None
    if found > DATA_FORMAT:
        raise DataFormatError(f"{data_dir} holds data format {found}, newer than this "
                              f"forestream's {DATA_FORMAT}: run the forestream release that "
                              "wrote it (formats are never downgraded)")
    while found < DATA_FORMAT:
        UPGRADES[found](data_dir)
        found += 1
        write_atomically(path, json.dumps({"forestream_data_format": found}) + "\n")
    return found
