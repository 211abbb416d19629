"""summary.csv (one row an image, appended as each image ends) and studies.csv (one row a study).

summary.csv is created through the run's OutputWriter (never over an input, never over a file it did not
write unless --resume/--overwrite) and then grows one complete row per write(2) on an O_APPEND descriptor:
a driver killed at any moment leaves a valid CSV of every image finished so far.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from radassist.batch.worker import ImageStatus
from radassist.outputs import OutputRefused, OutputWriter, shown

SUMMARY_COLUMNS = ("file", "status", "reason", "study", "positive", "result", "total_ms", "attempts")
STUDY_COLUMNS = ("study", "images", *(status.value for status in ImageStatus), "positive")


@dataclass(frozen=True)
class SummaryRow:
    file: str  # path relative to the source folder
    status: ImageStatus
    reason: str = ""
    study: str = ""  # Study Instance UID, or folder:<relative folder> for images without one
    positive: tuple[str, ...] = ()
    result: str = ""  # the result JSON, relative to the output folder
    total_ms: float | None = None
    attempts: int = 0  # times handed to a worker in this run (0: result kept from an earlier run)


@dataclass
class StudyTally:
    images: int = 0
    by_status: Counter = field(default_factory=Counter)
    positive: Counter = field(default_factory=Counter)  # label -> images positive for it


def _csv_line(values: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


class SummaryWriter:
    def __init__(self, writer: OutputWriter, path: Path) -> None:
        self.path = path
        self.counts: Counter = Counter()
        self.studies: dict[str, StudyTally] = {}
        writer.write_text(path, _csv_line(list(SUMMARY_COLUMNS)))
        try:
            self._descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise OutputRefused(f"{shown(path)} cannot be written ({exc.strerror or exc})") from None

    def add(self, row: SummaryRow) -> None:
        line = _csv_line([row.file, row.status.value, row.reason, row.study, ";".join(row.positive), row.result,
                          "" if row.total_ms is None else row.total_ms, row.attempts])
        try:
            os.write(self._descriptor, line.encode("utf-8"))
        except OSError as exc:
            raise OutputRefused(f"{shown(self.path)} cannot be written ({exc.strerror or exc})") from None
        self.counts[row.status] += 1
        tally = self.studies.setdefault(row.study or "(unknown)", StudyTally())
        tally.images += 1
        tally.by_status[row.status] += 1
        tally.positive.update(row.positive)

    def close(self) -> None:
        try:
            os.fsync(self._descriptor)
        except OSError:
            pass
        os.close(self._descriptor)

    def write_studies(self, writer: OutputWriter, path: Path) -> None:
        """studies.csv: per study, how many images were read / refused / failed and the positive findings."""
        lines = [_csv_line(list(STUDY_COLUMNS))]
        for study, tally in sorted(self.studies.items()):
            positive = ";".join(f"{label}:{count}" for label, count in sorted(tally.positive.items()))
            lines.append(_csv_line([study, tally.images] + [tally.by_status[status] for status in ImageStatus]
                                   + [positive]))
        writer.write_text(path, "".join(lines))
