"""Shared timing helpers: every benchmark prints a small table and ONE JSON line, with ratios against a
baseline measured in the same process (these machines are shared and noisy, absolute times drift)."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable


def _median_p95(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]


def measure(fn: Callable[[], object], runs: int = 20, warmup: int = 2) -> dict:
    """Median and p95 wall time of `fn` in ms over `runs` calls after `warmup` calls, and the same for the
    calling thread's CPU time (the work without the waiting for a core that a shared machine adds)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        wall_start, cpu_start = time.perf_counter(), time.thread_time()
        fn()
        wall.append((time.perf_counter() - wall_start) * 1000.0)
        cpu.append((time.thread_time() - cpu_start) * 1000.0)
    (median, p95), (cpu_median, cpu_p95) = _median_p95(wall), _median_p95(cpu)
    return {"median_ms": round(median, 3), "p95_ms": round(p95, 3), "cpu_median_ms": round(cpu_median, 3),
            "cpu_p95_ms": round(cpu_p95, 3), "runs": runs}


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def emit_json(benchmark: str, results: dict) -> None:
    print(json.dumps({"benchmark": benchmark, "machine": platform.machine(), "python": platform.python_version(),
                      **results}))
