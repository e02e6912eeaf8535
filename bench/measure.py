"""What every benchmark here measures the same way: median time, and peak memory of one call.

Peak memory is read from /proc (VmHWM after resetting it through clear_refs), because libxml2's
and OpenSSL's allocations are invisible to tracemalloc; callers run the measured call in a fresh
child process with a fixed mmap threshold so that memory freed while preparing is not reused.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable


def time_op(fn: Callable[[], object], runs: int) -> float:
    """Median seconds of `runs` calls, after one warm-up call (caches, key objects, schemas)."""
    fn()
    samples = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def status_bytes(field: str) -> int:
    """A /proc/self/status field given in kB (VmRSS, VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so preparing the input doesn't count."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_growth(fn: Callable[[], object]) -> int:
    """How far one call of `fn` raises this process's peak resident memory, in bytes."""
    gc.collect()
    reset_peak()
    before = status_bytes("VmRSS")
    fn()
    return status_bytes("VmHWM") - before
