"""Start-up: `radassist view IMAGE` from process start to (a) its window on screen, (b) the first picture
(the reduced-resolution preview of a JPEG 2000 file), (c) the full radiograph painted and, with the AI
read on (the default), (d) findings shown and (e) the read complete; and peak RSS (the viewer process;
the decoder helper is a separate process);
against a bare PySide6 QMainWindow started the same way (the floor any Qt viewer pays). Images: the
bundled 1024 x 1024 DICOM and the 3000 x 3000 JPEG 2000 lossless chest DICOM of large_dicom.py (a PACS
image opened straight from the command line). No AI read, offscreen platform.

The times come from the child: a probe hooks MainWindow (window up = first event-loop turn after show();
image = its `image_shown` signal) and prints CLOCK_MONOTONIC stamps, which the parent subtracts from its
own stamp taken just before spawning. The probe imports radassist.gui.main_window before calling
`radassist.cli.main(["view", ...])`; `radassist view` imports it anyway, so the import work is the same.

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
from large_dicom import large_chest_dicoms  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "resources" / "samples" / "nih_cxr14_no_finding.dcm"
GOAL_S = 1.5

BARE_QT = """
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow
app = QApplication(sys.argv[:1])
window = QMainWindow(); window.setCentralWidget(QLabel("RadAssist")); window.resize(1600, 1000); window.show()
QTimer.singleShot(0, lambda: (print("window", time.monotonic(), flush=True), app.quit()))
app.exec()
"""

RADASSIST_VIEW = """
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from radassist.gui.main_window import MainWindow

def stamp(event):
    print(event, time.monotonic(), flush=True)

original_init = MainWindow.__init__

def hooked_init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    QTimer.singleShot(0, lambda: stamp("window"))
    self.preview_shown.connect(lambda _path: stamp("preview"))
    self.image_shown.connect(lambda _path: stamp("image"))
    if hasattr(self, "findings_shown"):  # versions before findings-first showed everything at the end
        self.findings_shown.connect(lambda: stamp("findings"))
    else:
        self.read_finished.connect(lambda *_: stamp("findings"))
    (self.read_finished if WITH_READ else self.image_shown).connect(lambda *_: (stamp("done"), QApplication.quit()))
    if LATER:  # the study-list workflow: the viewer starts empty, the radiologist opens a study later
        QTimer.singleShot(LATER_MS, lambda: (stamp("open"), self.open_image(sys.argv[1])))

WITH_READ = sys.argv[2] in ("read", "later")
LATER, LATER_MS = sys.argv[2] == "later", 3000
MainWindow.__init__ = hooked_init
from radassist.cli import main
sys.exit(main(["view", *([] if LATER else [sys.argv[1]]), "--no-record", *([] if WITH_READ else ["--no-read"])]))
"""


def timed_child(code: str, *args: str) -> dict[str, float]:
    """Seconds from spawn to each stamped event and to exit, and the peak RSS (MiB), of one child."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    exited = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"start-up child failed with status {status}")
    events = {name: float(value) - start for name, value in (line.split() for line in output.splitlines())}
    return {**events, "exit": exited, "rss_mib": usage.ru_maxrss / 1024.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    j2k = large_chest_dicoms()["j2k"]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RADASSIST_DATA_DIR"] = tmp
        timed_child(RADASSIST_VIEW, str(SAMPLE), "read")  # unmeasured: the OS file cache, as on a used workstation
        cases = {"radassist view 1024 DICOM": (str(SAMPLE), "no-read"),
                 "radassist view 3000 JPEG 2000": (str(j2k), "no-read"),
                 "radassist view 1024 DICOM + AI read": (str(SAMPLE), "read")}
        runs = {"bare PySide6 window": [timed_child(BARE_QT) for _ in range(args.runs)],
                **{name: [timed_child(RADASSIST_VIEW, *argv) for _ in range(args.runs)] for name, argv in cases.items()}}
    baseline = statistics.median(r["window"] for r in runs["bare PySide6 window"])
    rows, results = [], {}
    for name, samples in runs.items():
        entry = {key: round(statistics.median(s[key] for s in samples), 3)
                 for key in ("window", "preview", "image", "findings", "done", "exit") if all(key in s for s in samples)}
        entry["peak_rss_mib"] = round(max(s["rss_mib"] for s in samples), 1)
        entry["window_ratio_vs_bare_qt"] = round(entry["window"] / baseline, 3)
        results[name] = entry
        first_picture = entry.get("preview", entry.get("image", entry["window"]))
        rows.append([name, entry["window"], entry.get("preview", ""), entry.get("image", ""),
                     entry.get("findings", ""), entry["done"] if "findings" in entry else "", entry["exit"],
                     entry["peak_rss_mib"], entry["window_ratio_vs_bare_qt"],
                     "yes" if first_picture <= GOAL_S else "NO"])
    print_table(f"start-up, median of {args.runs} runs (seconds from process start; goal: first picture on "
                f"screen <= {GOAL_S} s)",
                ["program", "window up", "preview painted", "image painted", "findings shown", "read complete",
                 "process exit", "peak RSS MiB",
                 "window ratio vs bare Qt", "within goal"], rows)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RADASSIST_DATA_DIR"] = tmp
        later = {name: [timed_child(RADASSIST_VIEW, path, "later") for _ in range(args.runs)]
                 for name, path in (("1024 DICOM", str(SAMPLE)), ("3000 JPEG 2000", str(j2k)))}
    opened_later = {}
    for name, samples in later.items():
        first_picture = [s.get("preview", s["image"]) - s["open"] for s in samples]
        opened_later[name] = {"first_picture_after_open_s": round(statistics.median(first_picture), 3),
                              "findings_after_image_s": round(statistics.median(s["findings"] - s["image"]
                                                                               for s in samples), 3),
                              "complete_after_image_s": round(statistics.median(s["done"] - s["image"]
                                                                               for s in samples), 3)}
    print_table("opened 3 s after an empty start (models and decoder helper loaded meanwhile), AI read on; "
                "seconds, median", ["image", "first picture after open", "findings after image",
                                    "read complete after image"],
                [[name, r["first_picture_after_open_s"], r["findings_after_image_s"], r["complete_after_image_s"]]
                 for name, r in opened_later.items()])
    emit_json("startup", {**results, "opened_later": opened_later, "runs": args.runs,
                          "load_average": round(os.getloadavg()[0], 2)})


if __name__ == "__main__":
    main()
