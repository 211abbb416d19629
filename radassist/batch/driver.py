"""One batch run: list the source, skip complete results (--resume), read the rest on an engine, and record
every image's fate (a result, a refusal or a failure with its reason) in summary.csv as it happens.

Output folder layout:
    OUT/results/<relative path of the image>.json   one result per image read
    OUT/summary.csv                                  one row per image, in the order they finished
    OUT/studies.csv                                  one row per study (DICOM Study Instance UID, else folder)
    OUT/ray/                                         Ray's logs and temporary files (--engine ray, local Ray)
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from radassist.batch.results import (
    RESULTS_FOLDER,
    complete_result,
    positive_labels,
    result_path,
    total_ms,
    write_result,
)
from radassist.batch.sources import BatchItem, SourceListing, list_source
from radassist.batch.summary import SummaryRow, SummaryWriter
from radassist.batch.work_queue import WorkQueue
from radassist.batch.worker import ImageStatus, Outcome, WorkerOptions, folder_key
from radassist.errors import InputRefused
from radassist.outputs import OutputRefused, OutputWriter, shown

SUMMARY_NAME = "summary.csv"
STUDIES_NAME = "studies.csv"
RAY_FOLDER = "ray"


class EngineKind(str, enum.Enum):
    LOCAL = "local"  # worker processes on this machine
    RAY = "ray"  # Ray actors on a local Ray instance or an existing cluster (--ray-address)


@dataclass(frozen=True)
class BatchPlan:
    source: Path
    out: Path
    engine: EngineKind = EngineKind.LOCAL
    workers: int = 1
    threads_per_worker: int = 1
    retries: int = 1  # times an image is handed to another worker after its worker was lost
    resume: bool = False  # keep complete results of an earlier run in OUT and read only the rest
    overwrite: bool = False  # read everything again, replacing OUT's earlier results
    ray_address: str | None = None
    worker_options: WorkerOptions = WorkerOptions()


@dataclass
class BatchTotals:
    images: int = 0
    by_status: dict[ImageStatus, int] = field(default_factory=dict)
    kept: int = 0  # complete results kept from an earlier run (--resume)
    seconds: float = 0.0  # the whole run
    reading_seconds: float = 0.0  # first to last image read in this run (after workers started)
    read_in_run: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.by_status.get(ImageStatus.FAILED, 0)

    def images_per_second(self) -> float | None:
        """Steady throughput: images read per second between the first and the last result of this run."""
        if self.read_in_run < 2 or self.reading_seconds <= 0:
            return None
        return (self.read_in_run - 1) / self.reading_seconds


def _check_output_folder(plan: BatchPlan) -> None:
    """An output folder that holds an earlier run is only used with --resume or --overwrite."""
    if plan.out.exists() and not plan.out.is_dir():
        raise InputRefused(f"{shown(plan.out)} exists and is not a folder")
    earlier = (plan.out / SUMMARY_NAME).exists() or any((plan.out / RESULTS_FOLDER).glob("*"))
    if earlier and not (plan.resume or plan.overwrite):
        raise InputRefused(f"{shown(plan.out)} holds an earlier batch; use --resume to finish it or --overwrite "
                           "to read everything again")


class Engine(Protocol):
    """Reads what the queue holds on its workers, handing every outcome to `deliver` (local_engine, ray_engine)."""

    lost_workers: list[str]  # one line per worker lost during the run
    notes: list[str]  # what the user should be told (e.g. fewer workers than asked)

    def read(self, queue: WorkQueue, deliver: Callable[[Outcome], None]) -> None: ...


def _engine(plan: BatchPlan) -> Engine:
    if plan.engine is EngineKind.RAY:
        from radassist.batch.ray_engine import RayEngine

        return RayEngine(plan.workers, plan.threads_per_worker, plan.worker_options, plan.out / RAY_FOLDER,
                         plan.ray_address)
    from radassist.batch.local_engine import LocalEngine

    return LocalEngine(plan.workers, plan.threads_per_worker, plan.worker_options)


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


def run_batch(plan: BatchPlan, make_progress: Callable[[int], Progress] | None = None) -> BatchTotals:
    """Run the batch. `make_progress(total)` (e.g. a tqdm bar) is called once the source is listed."""
    started = time.perf_counter()
    if plan.resume and plan.overwrite:
        raise InputRefused("--resume keeps earlier results and --overwrite replaces them: give one of them")
    _check_output_folder(plan)
    listing = list_source(plan.source, exclude=(plan.out / RESULTS_FOLDER, plan.out / RAY_FOLDER))
    if not listing.items and not listing.refused:
        raise InputRefused(f"no image files found in {shown(plan.source)}")
    writer = OutputWriter(inputs=[item.path for item in listing.items], overwrite=plan.resume or plan.overwrite)
    writer.folder(plan.out)
    summary = SummaryWriter(writer, plan.out / SUMMARY_NAME)
    totals = BatchTotals(images=len(listing.items) + len(listing.refused))
    progress = make_progress(totals.images) if make_progress is not None else None
    try:
        queue = _record_listing(plan, listing, summary, totals, progress)
        _read(plan, queue, writer, summary, totals, progress)
    finally:
        summary.close()
        if progress is not None:
            progress.close()
    summary.write_studies(writer, plan.out / STUDIES_NAME)
    totals.by_status = {status: summary.counts[status] for status in ImageStatus}
    totals.seconds = time.perf_counter() - started
    return totals


def _record_listing(plan: BatchPlan, listing: SourceListing, summary: SummaryWriter, totals: BatchTotals,
                    progress: Progress | None) -> WorkQueue:
    """Rows for what the source names but will not be read, and for results kept (--resume); the rest is queued."""
    for entry in listing.refused:
        summary.add(SummaryRow(entry.relative, ImageStatus.REFUSED, entry.reason, folder_key(entry.relative)))
    to_read = []
    for item in listing.items:
        payload = complete_result(plan.out, item) if plan.resume else None
        if payload is None:
            to_read.append(item)
            continue
        totals.kept += 1
        summary.add(SummaryRow(item.relative, ImageStatus.READ, "", payload["batch"].get("study", ""),
                               tuple(positive_labels(payload)), _relative_result(plan, item), total_ms(payload), 0))
    if progress is not None and len(listing.refused) + totals.kept:
        progress.update(len(listing.refused) + totals.kept)
    return WorkQueue(to_read, plan.retries)


def _relative_result(plan: BatchPlan, item: BatchItem) -> str:
    return result_path(plan.out, item).relative_to(plan.out).as_posix()


def _read(plan: BatchPlan, queue: WorkQueue, writer: OutputWriter, summary: SummaryWriter, totals: BatchTotals,
          progress: Progress | None) -> None:
    first_result_at: float | None = None

    def deliver(outcome: Outcome) -> None:
        nonlocal first_result_at
        result = ""
        if outcome.status is ImageStatus.READ and outcome.payload is not None:
            try:
                write_result(writer, plan.out, outcome.item, outcome.payload)
            except OutputRefused as exc:
                outcome.status, outcome.reason = ImageStatus.FAILED, f"result not written: {exc}"
            else:
                result = _relative_result(plan, outcome.item)
                totals.read_in_run += 1
                now = time.perf_counter()
                first_result_at = first_result_at or now
                totals.reading_seconds = now - first_result_at
        summary.add(SummaryRow(outcome.item.relative, outcome.status, outcome.reason, outcome.study,
                               tuple(outcome.positive), result, outcome.total_ms, queue.attempts(outcome.item)))
        if progress is not None:
            progress.update(1)

    engine = _engine(plan)
    try:
        if len(queue):
            engine.read(queue, deliver)
    except BaseException as exc:  # every image still queued gets a row saying why it was not read
        why = "the batch was interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        for outcome in queue.give_up(f"not read: {why}"):
            deliver(outcome)
        raise
    finally:
        totals.notes += engine.notes
        if engine.lost_workers:
            totals.notes.append(f"{len(engine.lost_workers)} worker(s) lost: " + "; ".join(engine.lost_workers[:5]))


def summary_line(plan: BatchPlan, totals: BatchTotals) -> str:
    counts = ", ".join(f"{totals.by_status.get(status, 0)} {status.value}" for status in ImageStatus)
    kept = f" ({totals.kept} kept from an earlier run)" if totals.kept else ""
    speed = totals.images_per_second()
    rate = f"; {speed:.2f} images/s after start-up" if speed else ""
    return (f"{totals.images} images: {counts}{kept} in {totals.seconds:.1f} s{rate}; "
            f"summary in {shown(plan.out / SUMMARY_NAME)}")


def default_threads(workers: int, ray_address: str | None) -> int:
    """onnxruntime threads per worker: this machine's cores shared out, or 1 on a cluster of unknown nodes
    (each Ray actor reserves one CPU)."""
    return 1 if ray_address else max(1, (os.cpu_count() or 1) // workers)
