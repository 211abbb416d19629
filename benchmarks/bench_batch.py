"""Batch: `radassist batch DIR --out DIR` throughput with 1 and 2 worker processes (ratio vs 1 worker).

Images: the first N PNGs of ../shared/data/pediatric_pneumonia and covid_hannover (linked into a temp
folder; nothing is copied into the repo). Run: .venv/bin/python benchmarks/bench_batch.py [--images N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit_json, print_table  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def image_folder(count: int, root: Path) -> Path:
    folder = root / "images"
    folder.mkdir()
    sources = sorted((SHARED / "pediatric_pneumonia/images").glob("*.png"))[: count // 2]
    sources += sorted((SHARED / "covid_hannover/images").glob("*.png"))[: count - len(sources)]
    for source in sources:
        (folder / source.name).symlink_to(source)
    return folder


def run_batch(folder: Path, out: Path, workers: int) -> float:
    start = time.perf_counter()
    subprocess.run([str(REPO / ".venv/bin/radassist"), "batch", str(folder), "--out", str(out),
                    "--workers", str(workers)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = image_folder(args.images, Path(tmp))
        count = len(list(folder.iterdir()))
        seconds = {w: run_batch(folder, Path(tmp) / f"out{w}", w) for w in (1, 2)}
    rows, results = [], {}
    for workers, elapsed in seconds.items():
        throughput = count / elapsed
        results[f"workers_{workers}"] = {"seconds": round(elapsed, 2), "images_per_s": round(throughput, 2),
                                         "speedup_vs_1": round(seconds[1] / elapsed, 3)}
        rows.append([workers, count, round(elapsed, 2), round(throughput, 2), round(seconds[1] / elapsed, 3)])
    print_table("batch: radassist batch (whole process, incl. start-up and model load)",
                ["workers", "images", "seconds", "images/s", "speed-up vs 1"], rows)
    emit_json("batch", results)


if __name__ == "__main__":
    main()
