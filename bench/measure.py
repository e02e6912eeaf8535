"""What every benchmark here measures the same way: median time, and peak memory of one call.

Peak memory is read from /proc (VmHWM after resetting it through clear_refs), because libxml2's
and OpenSSL's allocations are invisible to tracemalloc; callers run the measured call in a fresh
child process with a fixed mmap threshold so that memory freed while preparing is not reused.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any


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


def ratio_rows(
    size_name: str, cases: list[tuple[str, int, Callable[[], object]]], runs: int
) -> list[dict[str, Any]]:
    """Each case timed against the first (the floor, measured once), as table rows."""
    floor = time_op(cases[0][2], runs)
    out = []
    for index, (name, size, fn) in enumerate(cases):
        seconds = floor if index == 0 else time_op(fn, runs)
        out.append(
            {
                "size": size_name,
                "operation": name,
                "bytes": size,
                "seconds": round(seconds, 5),
                "ratio_to_sha256": round(seconds / floor, 1),
            }
        )
    return out


def ratio_table(
    doc: str, rows_for: Callable[[str, int], list[dict[str, Any]]], sizes: str = "1m,20m"
) -> None:
    """The command line of a benchmark whose rows are (size, operation, bytes, seconds, ratio
    to its floor): `--sizes`, `--runs`, `--json`; a table otherwise."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--sizes", default=sizes)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [row for size in args.sizes.split(",") for row in rows_for(size, args.runs)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'size':>4}  {'operation':<24} {'bytes':>10} {'seconds':>9} {'× sha256':>9}")
    for r in rows:
        print(
            f"{r['size']:>4}  {r['operation']:<24} {r['bytes']:>10} {r['seconds']:>9.4f}"
            f" {r['ratio_to_sha256']:>9.1f}"
        )
