"""Background threads that yield the cores to the threads that process records.

On Linux each thread has a nice value of its own (``setpriority`` on its thread id), so a
thread that serializes checkpoints or prepares memory can run behind the processing
thread of the same process. Elsewhere ``setpriority`` on that id would name a process,
so nothing is done there.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading


def lower_this_thread(niceness: int) -> None:
    """Make the calling thread ``niceness`` nicer than it is (best effort: Linux only;
    raising one's own nice value needs no privilege)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
