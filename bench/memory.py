"""Peak resident memory of the running process, as the benches report it."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM), in MiB.

    Not ``ru_maxrss``: Linux keeps that across fork and exec, so a worker started by a larger process (a test
    runner, a bench that loaded a model) reports its parent's peak (measured: a 10.8 MiB child of a 1.5 GB
    parent read 1526 MB)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (no /proc: not Linux)
