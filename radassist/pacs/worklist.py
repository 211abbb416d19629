"""The worklist: one SQLite row per received instance, with AI status, priority, reading and results status.

It holds UIDs, statuses and numbers, never patient names or IDs (those stay in the spooled DICOM headers,
which the viewer reads for display). WAL + synchronous=FULL like the feedback store, so a row written
before a C-STORE is acknowledged survives a kill; every call opens its own short connection, so the
listener's association threads, its pre-reader, its sender and a viewer in another process can share it.

Priority: the calibrated probability of the model card's `abnormal` label when the model has one, else
the highest calibrated probability among the top-level findings (labels not conditional on another).
`flagged` says whether that label is at or above its operating threshold; `lead_finding` names the most probable
specific finding at or above its threshold (what the worklist shows beside the priority).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from radassist.results import Finding

ABNORMAL_LABEL = "abnormal"
BUSY_TIMEOUT_S = 30.0


class AIStatus(str, Enum):
    RECEIVED = "received"  # in the spool, waiting for the pre-read
    READ = "read"  # pre-read done, priority set
    REFUSED = "refused"  # input QA refused it (not a frontal chest radiograph, unreadable pixels, ...)
    FAILED = "failed"  # the pre-read raised an unexpected error (recorded, the listener keeps going)


class ReadingStatus(str, Enum):
    UNREAD = "unread"
    OPENED = "opened"
    SIGNED = "signed"


class ResultsStatus(str, Enum):
    NOT_SENT = "not_sent"  # no destination configured, or nothing to send (refused)
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"  # gave up after the retries; the objects stay in the outbox


@dataclass(frozen=True)
class Priority:
    score: float  # calibrated probability in [0, 1]
    label: str  # the label it came from
    flagged: bool  # that label is at or above its threshold
    lead_finding: str = ""  # the most probable specific finding at or above its threshold ("" = none)


def ai_priority(findings: Sequence[Finding]) -> Priority | None:
    """The worklist priority of one read (see the module docstring); None when there are no findings."""
    abnormal = next((f for f in findings if f.label == ABNORMAL_LABEL), None)
    if abnormal is None:
        top_level = [f for f in findings if not f.conditional_on]
        abnormal = max(top_level, key=lambda f: f.probability, default=None)
    if abnormal is None:
        return None
    specific = [f for f in findings if f.positive and not f.conditional_on and f.label != ABNORMAL_LABEL]
    lead = max(specific, key=lambda f: f.probability, default=None)
    return Priority(score=float(abnormal.probability), label=abnormal.label, flagged=bool(abnormal.positive),
                    lead_finding=lead.label if lead else "")


@dataclass(frozen=True)
class WorklistEntry:
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    calling_ae: str
    received_utc: str
    spool_path: str
    ai_status: AIStatus
    ai_reason: str
    priority: float | None
    priority_label: str
    flagged: bool
    lead_finding: str
    model_id: str
    reading_status: ReadingStatus
    results_status: ResultsStatus
    results_attempts: int
    results_error: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    study_instance_uid TEXT NOT NULL,
    series_instance_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    calling_ae TEXT NOT NULL,
    received_utc TEXT NOT NULL,
    spool_path TEXT NOT NULL,
    ai_status TEXT NOT NULL,
    ai_reason TEXT NOT NULL DEFAULT '',
    priority REAL,
    priority_label TEXT NOT NULL DEFAULT '',
    flagged INTEGER NOT NULL DEFAULT 0,
    lead_finding TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    reading_status TEXT NOT NULL DEFAULT 'unread',
    results_status TEXT NOT NULL DEFAULT 'not_sent',
    results_attempts INTEGER NOT NULL DEFAULT 0,
    results_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS instances_by_priority ON instances (priority DESC);
CREATE INDEX IF NOT EXISTS instances_by_status ON instances (ai_status);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Worklist:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    def add_received(self, *, sop_instance_uid: str, study_instance_uid: str, series_instance_uid: str,
                     sop_class_uid: str, calling_ae: str, spool_path: Path) -> None:
        """Record an arrival (a re-sent instance starts over: it is a new copy of the file)."""
        with self._connect() as db:
            db.execute(
                """INSERT INTO instances (sop_instance_uid, study_instance_uid, series_instance_uid, sop_class_uid,
                       calling_ae, received_utc, spool_path, ai_status)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (sop_instance_uid) DO UPDATE SET received_utc = excluded.received_utc,
                       calling_ae = excluded.calling_ae, spool_path = excluded.spool_path,
                       ai_status = excluded.ai_status, ai_reason = '', priority = NULL, priority_label = '',
                       flagged = 0, lead_finding = '', model_id = ''""",
                (sop_instance_uid, study_instance_uid, series_instance_uid, sop_class_uid, calling_ae, _now(),
                 str(spool_path), AIStatus.RECEIVED.value))

    def set_read(self, sop_instance_uid: str, *, status: AIStatus, reason: str = "", priority: Priority | None = None,
                 model_id: str = "") -> None:
        with self._connect() as db:
            db.execute(
                """UPDATE instances SET ai_status = ?, ai_reason = ?, priority = ?, priority_label = ?, flagged = ?,
                       lead_finding = ?, model_id = ? WHERE sop_instance_uid = ?""",
                (status.value, reason, priority.score if priority else None, priority.label if priority else "",
                 int(priority.flagged) if priority else 0, priority.lead_finding if priority else "", model_id,
                 sop_instance_uid))

    def set_results(self, sop_instance_uid: str, status: ResultsStatus, *, attempts: int = 0, error: str = "") -> None:
        with self._connect() as db:
            db.execute("UPDATE instances SET results_status = ?, results_attempts = ?, results_error = ? "
                       "WHERE sop_instance_uid = ?", (status.value, attempts, error[:500], sop_instance_uid))

    def set_reading(self, sop_instance_uid: str, status: ReadingStatus) -> None:
        with self._connect() as db:
            db.execute("UPDATE instances SET reading_status = ? WHERE sop_instance_uid = ?",
                       (status.value, sop_instance_uid))

    def known(self) -> set[str]:
        with self._connect() as db:
            return {row[0] for row in db.execute("SELECT sop_instance_uid FROM instances")}

    def get(self, sop_instance_uid: str) -> WorklistEntry | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM instances WHERE sop_instance_uid = ?", (sop_instance_uid,)).fetchone()
        return _entry(row) if row else None

    def pending(self) -> list[WorklistEntry]:
        """Instances still waiting for their pre-read, oldest first (after a restart: what to read again)."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM instances WHERE ai_status = ? ORDER BY received_utc",
                              (AIStatus.RECEIVED.value,)).fetchall()
        return [_entry(r) for r in rows]

    def entries(self) -> list[WorklistEntry]:
        """The worklist order: flagged first, then by priority (highest first), unread before pre-read-less rows;
        instances without a priority (waiting, refused, failed) after those, newest first."""
        with self._connect() as db:
            rows = db.execute(
                """SELECT * FROM instances
                   ORDER BY (priority IS NULL), flagged DESC, priority DESC, received_utc DESC""").fetchall()
        return [_entry(r) for r in rows]


def _entry(row: sqlite3.Row) -> WorklistEntry:
    return WorklistEntry(
        sop_instance_uid=row["sop_instance_uid"], study_instance_uid=row["study_instance_uid"],
        series_instance_uid=row["series_instance_uid"], sop_class_uid=row["sop_class_uid"],
        calling_ae=row["calling_ae"], received_utc=row["received_utc"], spool_path=row["spool_path"],
        ai_status=AIStatus(row["ai_status"]), ai_reason=row["ai_reason"], priority=row["priority"],
        priority_label=row["priority_label"], flagged=bool(row["flagged"]), lead_finding=row["lead_finding"],
        model_id=row["model_id"],
        reading_status=ReadingStatus(row["reading_status"]), results_status=ResultsStatus(row["results_status"]),
        results_attempts=int(row["results_attempts"]), results_error=row["results_error"],
    )
