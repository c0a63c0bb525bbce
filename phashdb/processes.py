"""Whether the process a leftover is named after (a temporary file or folder carrying its
process id) is gone: what lets a process remove what a killed one left, never what a live one
still uses."""

from __future__ import annotations

import os


def gone(pid: int) -> bool:
    """True only when no process has the id `pid` (signal 0 asks without sending anything);
    a live process, another user's, or a number that is no process id: False (left alone).
    Never asked off POSIX, where os.kill ends the process whatever the signal."""
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # another user's process, or no process id at all
        return False
    return False
