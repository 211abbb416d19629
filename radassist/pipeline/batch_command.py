"""`radassist batch DIR --out DIR`: pre-read a folder with several worker processes.

Each worker builds its onnxruntime sessions once and reads many images; results go to one JSON per
image plus summary.csv. A refused or unreadable image is a row with its reason, never a stopped batch.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".gz", ".mha", ".mhd"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder for per-image JSON and summary.csv")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                        help="worker processes (default: up to 2)")
    parser.add_argument("--threads-per-worker", type=int, default=0,
                        help="onnxruntime threads per worker (default: cores / workers)")
    parser.add_argument("--record", action="store_true", help="store each AI result as an unsigned session")
    parser.add_argument("--store", metavar="PATH", help="feedback store for --record")


def find_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES
                                                                 or p.suffix == ""))


def _init_worker(threads: int) -> None:
    os.environ["RADASSIST_THREADS"] = str(threads)


def _read_one(task: tuple[str, str, bool, str | None]) -> dict:
    path, out_dir, record, store = task
    from radassist.errors import RadAssistError
    from radassist.io import read_image
    from radassist.pipeline.read import read_radiograph
    from radassist.pipeline.read_command import result_to_dict

    row = {"file": path, "status": "read", "reason": "", "positive": "", "total_ms": ""}
    try:
        image = read_image(path)
        result = read_radiograph(image)
        payload = result_to_dict(result)
        if record:
            from radassist.feedback import record_read

            payload["recorded_session"] = record_read(result, store_path=store, radiograph=image)
        name = Path(path).name + ".json"
        (Path(out_dir) / name).write_text(json.dumps(payload, indent=1), encoding="utf-8")
        row["positive"] = ";".join(f.label for f in result.findings if f.positive)
        row["total_ms"] = round(sum(result.timings_ms.values()), 1)
    except RadAssistError as exc:
        row.update(status="refused", reason=str(exc))
    return row


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from radassist.errors import InputRefused

    folder, out_dir = Path(args.folder), Path(args.out)
    if not folder.is_dir():
        raise InputRefused(f"{folder} is not a folder")
    images = find_images(folder)
    if not images:
        raise InputRefused(f"no image files found in {folder}")
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, args.workers)
    threads = args.threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    tasks = [(str(p), str(out_dir), args.record, args.store) for p in images]
    rows = []
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(threads,)) as pool:
        for row in tqdm(pool.map(_read_one, tasks, chunksize=4), total=len(tasks), unit="image",
                        desc="reading"):
            rows.append(row)
    with open(out_dir / "summary.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    read = sum(r["status"] == "read" for r in rows)
    print(f"{read} of {len(rows)} images read, {len(rows) - read} refused; summary in {out_dir / 'summary.csv'}")
    return 0
