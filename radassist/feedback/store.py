"""The event store: an append-only SQLite log that survives crashes and concurrent viewers.

Why these settings:
- WAL journal: readers never block the writer, and a process killed mid-write leaves the database
  consistent (the half-written frame is ignored at the next open).
- synchronous=FULL: a commit is on disk before append() returns, so "acknowledged" means "stored",
  even across a power cut.
- BEGIN IMMEDIATE + busy timeout + retry: two viewer instances (or a viewer and a batch pre-read)
  writing at once wait for each other instead of failing.
- Triggers forbid UPDATE and DELETE on events: corrections are new events (undo, a new session),
  never rewrites of history.
- PRAGMA user_version + a schema_version table: each schema change is a numbered migration applied
  once, in a transaction; a store written by a newer RadAssist is refused, not damaged.

Where images came from is NOT in this store. Source paths can contain patient names, so they are
kept in a separate local-only file beside it (`*.local-sources.sqlite`, mode 0600) that the export
reads to find images and never copies; `radassist export --images DIR` can find them instead.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from radassist.errors import InputRefused
from radassist.feedback.events import Event, EventType, utc_now_iso
from radassist.feedback.identity import pseudonym_secret, secret_fingerprint
from radassist.paths import user_data_dir

STORE_FILE_NAME = "feedback.sqlite"
SOURCES_SUFFIX = ".local-sources.sqlite"
BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "append-only events log, store info", (
        """CREATE TABLE schema_version (
               version INTEGER PRIMARY KEY,
               applied_utc TEXT NOT NULL,
               description TEXT NOT NULL)""",
        """CREATE TABLE store_info (
               key TEXT PRIMARY KEY,
               value TEXT NOT NULL)""",
        """CREATE TABLE events (
               seq INTEGER PRIMARY KEY AUTOINCREMENT,
               event_id TEXT NOT NULL UNIQUE,
               session_id TEXT NOT NULL,
               ts_utc TEXT NOT NULL,
               reader_id TEXT NOT NULL,
               image_key TEXT NOT NULL,
               type TEXT NOT NULL,
               payload TEXT NOT NULL CHECK (json_valid(payload)))""",
        "CREATE INDEX events_by_session ON events (session_id, seq)",
        "CREATE INDEX events_by_time ON events (ts_utc)",
        """CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events
           BEGIN SELECT RAISE(ABORT, 'feedback events are append-only: UPDATE is not allowed'); END""",
        """CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
           BEGIN SELECT RAISE(ABORT, 'feedback events are append-only: DELETE is not allowed'); END""",
    )),
    Migration(2, "index events by image (a reading reopens the image's session)", (
        "CREATE INDEX events_by_image ON events (image_key, seq)",
    )),
)


def resolve_store_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--store PATH, else RADASSIST_DATA_DIR/feedback/feedback.sqlite, else the platform's user-data folder."""
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_dir():
            path = path / STORE_FILE_NAME
        return path
    return user_data_dir() / "feedback" / STORE_FILE_NAME


def sources_path_for(store_path: Path) -> Path:
    return store_path.with_name(store_path.name.removesuffix(".sqlite") + SOURCES_SUFFIX)


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    mode = _retry(lambda: connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    if str(mode).lower() != "wal":
        raise InputRefused(f"the feedback store {path} cannot use write-ahead logging (journal mode {mode})")
    connection.execute("PRAGMA synchronous = FULL")
    return connection


def _retry(operation, deadline_s: float = BUSY_TIMEOUT_S):
    """Run `operation`, retrying while another process holds the write lock (beyond the busy handler)."""
    deadline = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                # A full or read-only disk ("disk I/O error", "database or disk is full", "attempt to write a
                # readonly database"): one clear line; the failed write is not stored, earlier events stay as they were.
                raise InputRefused(f"the feedback store cannot be written ({exc}); is its disk full or "
                                   "read-only?") from None
            if time.monotonic() > deadline:
                raise InputRefused("the feedback store stayed locked by another program for too long") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def migrate(connection: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the schema to the newest version; safe to call from several processes at once."""
    latest = migrations[-1].version
    for migration in migrations:
        def apply(migration: Migration = migration) -> None:
            connection.execute("BEGIN IMMEDIATE")
            try:
                current = connection.execute("PRAGMA user_version").fetchone()[0]
                if current > latest:
                    raise InputRefused(
                        f"this feedback store has schema version {current}, newer than this RadAssist "
                        f"understands ({latest}); update RadAssist to use it"
                    )
                if current < migration.version:
                    for statement in migration.statements:
                        connection.execute(statement)
                    connection.execute(
                        "INSERT INTO schema_version (version, applied_utc, description) VALUES (?, ?, ?)",
                        (migration.version, utc_now_iso(), migration.description),
                    )
                    connection.execute(f"PRAGMA user_version = {int(migration.version)}")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

        _retry(apply)
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


class EventStore:
    """One store file. Thread-safe; each process opens its own EventStore."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self._scratch_dir: str | None = None
        self.path = resolve_store_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._secret = pseudonym_secret()
        self._lock = threading.Lock()
        try:
            self._db = _connect(self.path)
            migrate(self._db)
        except sqlite3.DatabaseError as exc:
            raise InputRefused(f"{self.path} is not a usable feedback store ({exc})") from None
        self._check_secret()
        self._sources: sqlite3.Connection | None = None

    @classmethod
    def scratch(cls) -> EventStore:
        """A store in a private temporary folder, deleted on close: for a viewer that records nothing
        (`radassist view --no-record`, screenshots, the self-test) but still keeps its readings
        somewhere while it runs."""
        folder = tempfile.mkdtemp(prefix="radassist-scratch-store-")
        store = cls(Path(folder) / STORE_FILE_NAME)
        store._scratch_dir = folder
        return store

    @property
    def secret(self) -> bytes:
        return self._secret

    def _check_secret(self) -> None:
        """Keys in a store only match images under the secret that made them: never mix two secrets."""
        mine = secret_fingerprint(self._secret)

        def claim() -> str:
            self._db.execute("INSERT OR IGNORE INTO store_info (key, value) VALUES ('secret_fingerprint', ?)",
                             (mine,))
            return self._db.execute("SELECT value FROM store_info WHERE key = 'secret_fingerprint'").fetchone()[0]

        recorded = _retry(claim)
        if recorded != mine:
            raise InputRefused(
                f"the feedback store {self.path} was created by another RadAssist installation (a different "
                "secret key), so its image keys would not match this installation's; use that installation "
                "or point --store at a new file"
            )

    # --- writing -------------------------------------------------------------------------------

    def append(self, event: Event) -> int:
        """Store one event durably; returns its sequence number. Retrying after an unclear failure is safe."""
        row = (event.event_id, event.session_id, event.ts_utc, event.reader_id, event.image_key,
               event.type.value, event.payload_json())

        def insert() -> int:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO events (event_id, session_id, ts_utc, reader_id, image_key, type, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", row)
                self._db.execute("COMMIT")
                return int(cursor.lastrowid or 0)  # always set after an INSERT
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                found = self._db.execute("SELECT seq FROM events WHERE event_id = ?", (event.event_id,)).fetchone()
                if found is None:
                    raise
                return int(found[0])  # an earlier attempt did commit
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

        with self._lock:
            return _retry(insert)

    def remember_source(self, image_key: str, source_path: str) -> None:
        """Note where an image was opened from, in the local-only sources file (never exported)."""
        if not source_path:
            return
        with self._lock:
            db = self._sources_db()
            _retry(lambda: db.execute(
                "INSERT INTO sources (image_key, path, seen_utc) VALUES (?, ?, ?) "
                "ON CONFLICT (image_key) DO UPDATE SET path = excluded.path, seen_utc = excluded.seen_utc",
                (image_key, os.path.abspath(source_path), utc_now_iso())))

    def _sources_db(self) -> sqlite3.Connection:
        if self._sources is None:
            path = sources_path_for(self.path)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._sources = _connect(path)
            _retry(lambda: self._sources.execute(
                "CREATE TABLE IF NOT EXISTS sources (image_key TEXT PRIMARY KEY, path TEXT NOT NULL, "
                "seen_utc TEXT NOT NULL)"))
        return self._sources

    # --- reading -------------------------------------------------------------------------------

    def source_of(self, image_key: str) -> str | None:
        if not sources_path_for(self.path).exists():
            return None
        with self._lock:
            row = self._sources_db().execute("SELECT path FROM sources WHERE image_key = ?", (image_key,)).fetchone()
        return row[0] if row else None

    def events(self, session_id: str | None = None) -> list[Event]:
        query = "SELECT seq, event_id, session_id, ts_utc, reader_id, image_key, type, payload FROM events"
        arguments: tuple = ()
        if session_id is not None:
            query += " WHERE session_id = ?"
            arguments = (session_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", arguments).fetchall()
        return [
            Event(seq=seq, event_id=event_id, session_id=session, ts_utc=ts, reader_id=reader, image_key=key,
                  type=EventType(kind), payload=json.loads(payload))
            for seq, event_id, session, ts, reader, key, kind, payload in rows
        ]

    def session_ids_of_image(self, image_key: str) -> list[str]:
        """The sessions that read this image, in the order they were opened."""
        with self._lock:
            rows = self._db.execute(
                "SELECT session_id FROM events WHERE image_key = ? GROUP BY session_id ORDER BY MIN(seq)",
                (image_key,)).fetchall()
        return [row[0] for row in rows]

    def image_keys_of_sources(self, paths: Sequence[str | os.PathLike[str]]) -> dict[str, str]:
        """{absolute path: image key} for the paths this store has seen opened (the local sources file)."""
        if not paths or not sources_path_for(self.path).exists():
            return {}
        wanted = {os.path.abspath(path) for path in paths}
        with self._lock:
            rows = self._sources_db().execute("SELECT path, image_key FROM sources").fetchall()
        return {path: key for path, key in rows if path in wanted}

    def session_ids(self, since: datetime | None = None) -> list[str]:
        """Sessions in the order they were opened; `since` keeps those with any event at or after it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT session_id, MIN(seq), MAX(ts_utc) FROM events GROUP BY session_id ORDER BY MIN(seq)"
            ).fetchall()
        if since is not None:
            cutoff = since.astimezone(timezone.utc).isoformat(timespec="microseconds")
            rows = [row for row in rows if row[2] >= cutoff]
        return [row[0] for row in rows]

    def settings(self) -> dict[str, object]:
        """The SQLite settings this connection runs with (for diagnostics and the crash-safety tests)."""
        with self._lock:
            pragma = {name: self._db.execute(f"PRAGMA {name}").fetchone()[0]
                      for name in ("journal_mode", "synchronous", "busy_timeout", "user_version")}
        pragma["synchronous"] = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(pragma["synchronous"])
        return pragma

    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._sources is not None:
                self._sources.close()
                self._sources = None
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
            self._scratch_dir = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
