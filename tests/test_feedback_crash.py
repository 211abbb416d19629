"""Crash safety of the feedback store: SIGKILL at random points loses no acknowledged event.

A child process records events through the public API (FeedbackSession) and prints each event id
only after append() returned, i.e. after the commit. The parent kills it with SIGKILL at random
moments (during start-up and schema creation, and mid-stream), then checks that every acknowledged
event is in the store and that SQLite's integrity check passes. Two children writing at once stand
in for two viewer instances.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from radassist.feedback import EventStore, FeedbackSession

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")

KILLS = 60
SEED = 20240611

# The child: resume the session named on the command line (or start one), then record until killed.
CHILD = r"""
import sys, random
import numpy as np
from radassist.feedback import FeedbackSession
from radassist.image import ImageMetadata, Radiograph
from radassist.results import Finding, QAVerdict, ReadResult

store, session_id, limit, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
meta = ImageMetadata(source_path="", file_format="DICOM", rows=64, columns=64,
                     sop_instance_uid="1.2.826.0.1.3680043.8.498.77." + str(seed))
if session_id == "new":
    session = FeedbackSession(store, reader_id="crash-test")
    session.open_study(Radiograph(np.zeros((64, 64), np.float32), meta))
    session.ai_result_shown(ReadResult(meta=meta, qa=QAVerdict(True, "ok"), model_id="m", model_sha256="0" * 64,
        findings=[Finding("pneumonia", "Pneumonia", 0.7, 0.5, True), Finding("opacity", "Opacity", 0.3, 0.5, False)]))
else:
    session = FeedbackSession.resume(session_id, store)
print("SESSION", session.session_id, flush=True)
for index in range(limit):
    action = rng.randrange(6)
    if action == 0:
        event = session.accept("pneumonia")
    elif action == 1:
        event = session.reject("opacity")
    elif action == 2:
        session.draw_region("pneumonia", {"kind": "rectangle", "x0": index % 60, "y0": 1, "x1": 63, "y1": 40})
        event = session.store.events(session.session_id)[-1]
    elif action == 3:
        event = session.add_finding("effusion", "Pleural effusion")
    elif action == 4:
        if not session.undo():
            continue
        event = session.store.events(session.session_id)[-1]
    else:
        if not session.redo():
            continue
        event = session.store.events(session.session_id)[-1]
    print("ACK", event.event_id, flush=True)
print("DONE", flush=True)
"""


def _start(store: Path, session: str, limit: int, seed: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(store), session, str(limit), str(seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def _acknowledged(stdout: str) -> tuple[set[str], str | None]:
    """Event ids the child acknowledged (complete lines only) and the session id it announced."""
    acked, session = set(), None
    for line in stdout.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue  # cut by the kill: not acknowledged
        parts = line.split()
        if parts[:1] == ["ACK"]:
            acked.add(parts[1])
        elif parts[:1] == ["SESSION"]:
            session = parts[1]
    return acked, session


def _stored_ids(store: Path) -> set[str]:
    with EventStore(store) as opened:
        assert opened.integrity_check() == "ok"
        return {event.event_id for event in opened.events()}


def test_sigkill_at_random_points_loses_no_acknowledged_event(tmp_path: Path, data_dir: Path):
    rng = random.Random(SEED)
    store = tmp_path / "feedback.sqlite"
    all_acked: set[str] = set()
    session = "new"
    kills = mid_stream = lost = 0
    started = time.monotonic()
    for attempt in range(KILLS):
        child = _start(store, session, limit=100_000, seed=attempt)
        first_line = ""
        if attempt % 4 == 0:
            time.sleep(rng.uniform(0.0, 0.4))  # anywhere from interpreter start-up to the first events
        else:
            first_line = child.stdout.readline()  # running: kill mid-stream
            assert first_line.startswith("SESSION")
            time.sleep(rng.uniform(0.0, 0.15))
            mid_stream += 1
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        out = first_line + out
        assert child.returncode == -signal.SIGKILL
        kills += 1
        acked, announced = _acknowledged(out)
        session = announced or session
        all_acked |= acked
        if store.exists():
            stored = _stored_ids(store)
            lost += len(all_acked - stored)
            assert all_acked <= stored, f"kill {attempt}: acknowledged events missing"
        else:
            assert not acked
    elapsed = time.monotonic() - started
    print(f"\nkills={kills} mid_stream={mid_stream} acknowledged={len(all_acked)} lost={lost} "
          f"elapsed={elapsed:.1f}s")
    assert kills == KILLS and lost == 0
    assert len(all_acked) > KILLS  # the kills did interrupt real writing, not idle processes
    # The session reopened after every crash still replays: its state is consistent with the log.
    resumed = FeedbackSession.resume(session, store)
    state = resumed.state()
    assert state.findings["pneumonia"].ai_probability == pytest.approx(0.7)
    assert state.event_count == len(resumed.store.events(session))
    resumed.close()


def test_two_writers_at_once_lose_nothing(tmp_path: Path, data_dir: Path):
    store = tmp_path / "feedback.sqlite"
    EventStore(store).close()  # create the schema first so both children race only on events
    per_child = 150
    children = [_start(store, "new", limit=per_child, seed=seed) for seed in (1, 2)]
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert out.rstrip().endswith("DONE")
    acked = [_acknowledged(out) for out, _ in outputs]
    with EventStore(store) as opened:
        assert opened.integrity_check() == "ok"
        events = opened.events()
    stored = {e.event_id for e in events}
    for ids, _ in acked:
        assert ids <= stored
    # Both wrote during the same period: their sequence numbers interleave.
    seqs = [[e.seq for e in events if e.session_id == session] for _, session in acked]
    assert min(seqs[0]) < max(seqs[1]) and min(seqs[1]) < max(seqs[0])
    print(f"\ntwo writers: {sum(len(ids) for ids, _ in acked)} acknowledged, {len(stored)} stored, "
          f"lost={sum(len(ids - stored) for ids, _ in acked)}")


def test_events_cannot_be_updated_or_deleted_even_with_raw_sql(tmp_path: Path, data_dir: Path):
    store = tmp_path / "feedback.sqlite"
    import numpy as np

    from radassist.image import ImageMetadata, Radiograph

    meta = ImageMetadata(source_path="", file_format="PNG", rows=8, columns=8)
    with FeedbackSession(store, reader_id="r") as session:
        session.open_study(Radiograph(np.ones((8, 8), np.float32), meta))
    raw = sqlite3.connect(store)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE events SET reader_id = 'someone else'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("DELETE FROM events")
    assert raw.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    raw.close()
