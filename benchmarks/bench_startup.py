"""Start-up: cold start of `radassist view SAMPLE` to its first window (offscreen, saved as a screenshot,
no AI read) and its peak RSS, against a bare PySide6 QMainWindow doing the same in the same way.

Run: .venv/bin/python benchmarks/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit_json, print_table  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "resources" / "samples" / "nih_cxr14_no_finding.dcm"
BARE_QT = """
import sys
from PySide6.QtWidgets import QApplication, QMainWindow, QLabel
app = QApplication(sys.argv)
window = QMainWindow(); window.setCentralWidget(QLabel("RadAssist")); window.resize(1400, 900); window.show()
app.processEvents()
window.grab().save(sys.argv[1])
"""


def timed_child(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed with status {status}")
    return elapsed, usage.ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shot = str(Path(tmp) / "shot.png")
        data = {"RADASSIST_DATA_DIR": tmp}
        os.environ.update(data)
        cases = {
            "bare PySide6 window": [sys.executable, "-c", BARE_QT, shot],
            "radassist view (no read)": [str(REPO / ".venv/bin/radassist"), "view", str(SAMPLE), "--no-read",
                                         "--no-record", "--screenshot", shot],
        }
        measured = {name: [timed_child(cmd) for _ in range(args.runs)] for name, cmd in cases.items()}
    baseline = statistics.median(t for t, _ in measured["bare PySide6 window"])
    rows, results = [], {}
    for name, samples in measured.items():
        seconds = statistics.median(t for t, _ in samples)
        rss = max(r for _, r in samples)
        results[name] = {"median_s": round(seconds, 3), "peak_rss_mib": round(rss, 1),
                         "ratio_vs_bare_qt": round(seconds / baseline, 3)}
        rows.append([name, round(seconds, 3), round(rss, 1), results[name]["ratio_vs_bare_qt"]])
    print_table("start-up: process start -> first window on screen (offscreen grab), median of runs",
                ["program", "seconds", "peak RSS MiB", "ratio vs bare Qt"], rows)
    emit_json("startup", results)


if __name__ == "__main__":
    main()
