"""The event store and the session API hosts use: settings, schema versions, identity, undo/redo, resume."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from radassist.errors import InputRefused
from radassist.feedback import (
    EventStore,
    EventType,
    FeedbackSession,
    record_read,
    resolve_store_path,
    unsigned_sessions,
)
from radassist.feedback.identity import installation_secret, secret_path
from radassist.feedback.store import MIGRATIONS, Migration, migrate
from radassist.image import ImageMetadata, Radiograph
from radassist.results import DraftReport, Finding, QAVerdict, ReadResult, ReportSentence


def radiograph(uid: str | None = "1.2.826.0.1.3680043.8.498.1", *, name: str | None = None,
               patient_id: str | None = None, source: str = "") -> Radiograph:
    meta = ImageMetadata(source_path=source, file_format="DICOM" if uid else "PNG", rows=32, columns=48,
                         sop_instance_uid=uid, patient_name=name, patient_id=patient_id)
    return Radiograph(np.arange(32 * 48, dtype=np.float32).reshape(32, 48), meta)


def ai_result(image: Radiograph) -> ReadResult:
    return ReadResult(
        meta=image.meta, qa=QAVerdict(True, "ok"), model_id="cxr-test", model_sha256="a" * 64,
        findings=[Finding("pneumonia", "Pneumonia", 0.81, 0.5, True), Finding("opacity", "Opacity", 0.3, 0.5, False)],
        report=DraftReport([ReportSentence("FINDINGS", "Likely right lower zone opacity.", None, "opacity", 0.3,
                                           "possible", "s1")]))


@pytest.fixture()
def store(tmp_path: Path, data_dir: Path):
    with EventStore(tmp_path / "feedback.sqlite") as opened:
        yield opened


def test_store_runs_in_wal_with_full_sync_and_a_busy_timeout(store: EventStore):
    settings = store.settings()
    assert settings["journal_mode"] == "wal"
    assert settings["synchronous"] == "FULL"
    assert settings["busy_timeout"] >= 10_000
    assert settings["user_version"] == MIGRATIONS[-1].version == store.schema_version()


def test_migrations_apply_once_and_a_newer_store_is_refused(tmp_path: Path, data_dir: Path):
    path = tmp_path / "feedback.sqlite"
    EventStore(path).close()
    connection = sqlite3.connect(path, isolation_level=None)
    extra = MIGRATIONS + (Migration(2, "test: a reader-notes table", ("CREATE TABLE notes (text TEXT)",)),)
    assert migrate(connection, extra) == 2
    assert migrate(connection, extra) == 2  # idempotent: the table is not created twice
    versions = connection.execute("SELECT version, description FROM schema_version ORDER BY version").fetchall()
    assert [v for v, _ in versions] == [1, 2]
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(InputRefused, match="newer than this RadAssist"):
        EventStore(path)


def test_store_location_explicit_then_environment_then_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    explicit = tmp_path / "mine.sqlite"
    assert resolve_store_path(explicit) == explicit
    assert resolve_store_path(tmp_path) == tmp_path / "feedback.sqlite"  # a folder gets the default name
    monkeypatch.setenv("RADASSIST_DATA_DIR", str(tmp_path / "site"))
    assert resolve_store_path() == tmp_path / "site" / "feedback" / "feedback.sqlite"
    monkeypatch.delenv("RADASSIST_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_store_path() == tmp_path / "xdg" / "RadAssist" / "feedback" / "feedback.sqlite"


def test_secret_is_private_stable_and_keys_differ_between_installations(tmp_path: Path, data_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    secret = installation_secret()
    assert (secret_path().stat().st_mode & 0o777) == 0o600
    assert installation_secret() == secret
    with FeedbackSession(tmp_path / "a.sqlite", reader_id="r") as first:
        key = first.open_study(radiograph())
    with FeedbackSession(tmp_path / "a.sqlite", reader_id="r") as again:
        assert again.open_study(radiograph()) == key  # same image, same key
    assert "1.2.826.0.1.3680043.8.498.1" not in key
    monkeypatch.setenv("RADASSIST_DATA_DIR", str(tmp_path / "other-installation"))
    with pytest.raises(InputRefused, match="another RadAssist installation"):
        EventStore(tmp_path / "a.sqlite")
    with FeedbackSession(tmp_path / "b.sqlite", reader_id="r") as other:
        assert other.open_study(radiograph()) != key


def test_damaged_secret_is_refused_not_replaced(data_dir: Path):
    installation_secret()
    secret_path().write_bytes(b"short")
    with pytest.raises(InputRefused, match="damaged"):
        installation_secret()


def test_accept_reject_undo_redo_replay_as_an_editor_would(store: EventStore):
    session = FeedbackSession(store, reader_id="reader")
    session.open_study(radiograph())
    session.ai_result_shown(ai_result(radiograph()))
    session.accept("pneumonia")
    session.reject("opacity")
    assert session.undo()  # takes back "reject opacity"
    assert session.state().findings["opacity"].decision is None
    assert session.redo()
    assert session.state().findings["opacity"].decision == "absent"
    assert session.undo() and session.undo()  # both decisions gone
    state = session.state()
    assert state.findings["pneumonia"].decision is None and state.can_redo
    session.mark_uncertain("opacity")  # a new action forgets what was undone
    state = session.state()
    assert not state.can_redo and not session.redo()
    assert state.findings["opacity"].decision == "uncertain" and state.findings["pneumonia"].decision is None
    kinds = [e.type for e in store.events(session.session_id)]
    assert kinds.count(EventType.UNDO) == 3 and kinds.count(EventType.REDO) == 1  # nothing is rewritten


def test_regions_sentences_and_signing(store: EventStore):
    session = FeedbackSession(store, reader_id="reader")
    image = radiograph()
    session.open_study(image)
    session.ai_result_shown(ai_result(image))
    region = session.draw_region("opacity", {"kind": "rectangle", "x0": 2, "y0": 3, "x1": 20, "y1": 30})
    session.change_region(region, geometry={"kind": "ellipse", "cx": 10, "cy": 10, "rx": 4, "ry": 6})
    with pytest.raises(InputRefused, match="polygon"):
        session.draw_region("opacity", {"kind": "polygon", "points": [[1, 1], [2, 2]]})
    with pytest.raises(InputRefused, match="does not currently read"):
        session.edit_sentence("s1", "something else", "new text")
    session.edit_sentence("s1", "Likely right lower zone opacity.", "Right lower zone consolidation.")
    session.edit_sentence("s-new", "", "No effusion.", section="IMPRESSION")
    state = session.state()
    assert state.regions[region].geometry["kind"] == "ellipse"
    assert state.sentences["s1"].draft_text == "Likely right lower zone opacity."
    assert "IMPRESSION: No effusion." in state.current_report_text()
    session.accept("pneumonia")  # the AI flagged it: signing waits for a decision
    session.sign(state.current_report_text())
    with pytest.raises(InputRefused, match="signed"):
        session.accept("pneumonia")
    assert not session.undo()
    with pytest.raises(InputRefused, match="add_finding"):
        FeedbackSession.resume(session.session_id, store).reject("no-such-finding")


def test_a_session_reopened_after_a_crash_shows_the_state_it_had(tmp_path: Path, data_dir: Path):
    path = tmp_path / "feedback.sqlite"
    crashed = FeedbackSession(path, reader_id="reader")  # never closed: the process "dies" here
    crashed.open_study(radiograph())
    crashed.ai_result_shown(ai_result(radiograph()))
    crashed.accept("pneumonia")
    crashed.add_finding("effusion", "Pleural effusion")
    crashed.undo()
    before = crashed.state()
    with EventStore(path) as store:  # what the restarted viewer offers to reopen
        offered = unsigned_sessions(store, reader_id="reader")
        assert [s.session_id for s in offered] == [crashed.session_id]
        assert unsigned_sessions(store, reader_id="someone else") == []
    with FeedbackSession.resume(crashed.session_id, path) as reopened:
        after = reopened.state()
        assert after == before
        assert after.reader_id == "reader" and after.can_redo
        assert reopened.redo()
        assert reopened.state().findings["effusion"].added_by_reader


def test_free_text_is_scrubbed_of_the_patient_before_it_is_stored(store: EventStore):
    image = radiograph(name="DOE^JANE", patient_id="MRN778899")
    session = FeedbackSession(store, reader_id="reader")
    session.open_study(image)
    session.ai_result_shown(ai_result(image))
    session.accept("pneumonia")
    session.sign("FINDINGS: Consolidation. Called Jane Doe (MRN778899) on 2024-03-01 at 555-0199-123.")
    stored = store.events(session.session_id)[-1].payload["text"]
    for secret in ("Jane", "Doe", "MRN778899", "2024-03-01", "555-0199-123"):
        assert secret.lower() not in stored.lower()
    assert stored.startswith("FINDINGS: Consolidation. Called [NAME]")
    raw = store.path.read_bytes() + Path(str(store.path) + "-wal").read_bytes() if Path(
        str(store.path) + "-wal").exists() else store.path.read_bytes()
    assert b"DOE" not in raw.upper() and b"MRN778899" not in raw


def test_record_read_stores_an_unsigned_session_without_metadata(tmp_path: Path, data_dir: Path):
    image = radiograph(name="DOE^JANE", patient_id="PID-4411", source=str(tmp_path / "DOE_JANE.dcm"))
    session_id = record_read(ai_result(image), tmp_path / "feedback.sqlite", reader_id="batch")
    with EventStore(tmp_path / "feedback.sqlite") as store:
        events = store.events(session_id)
        assert [e.type for e in events] == [EventType.STUDY_OPENED, EventType.AI_RESULT_SHOWN]
        state = FeedbackSession.resume(session_id, store).state()
        assert not state.signed and state.findings["pneumonia"].ai_probability == pytest.approx(0.81)
        assert events[1].payload["model_sha256"] == "a" * 64 and events[1].payload["thresholds"]["opacity"] == 0.5
        text = " ".join(e.payload_json() for e in events)
        assert "DOE" not in text and "PID-4411" not in text and "DOE_JANE" not in text
        assert store.source_of(events[0].image_key) == str(tmp_path / "DOE_JANE.dcm")


def test_images_without_uid_are_keyed_by_pixels(tmp_path: Path, data_dir: Path):
    with FeedbackSession(tmp_path / "f.sqlite", reader_id="r") as one, \
            FeedbackSession(tmp_path / "f.sqlite", reader_id="r") as two:
        key = one.open_study(radiograph(None))
        assert two.open_study(radiograph(None)) == key
        changed = radiograph(None)
        changed.pixels[0, 0] += 1
    with FeedbackSession(tmp_path / "f.sqlite", reader_id="r") as three:
        assert three.open_study(changed) != key
        assert three.state().key_source == "pixel_content"


def test_events_without_an_open_study_or_with_bad_payloads_are_refused(store: EventStore):
    session = FeedbackSession(store, reader_id="r")
    with pytest.raises(InputRefused, match="open a study"):
        session.accept("pneumonia")
    session.open_study(radiograph())
    with pytest.raises(InputRefused, match="already has an image"):
        session.open_study(radiograph("1.2.3.4"))
    with pytest.raises(InputRefused, match="cannot be stored"):
        session.draw_region("x", {"kind": "rectangle", "x0": 1, "y0": 1, "x1": 2, "y1": 2, "extra": object()})
    with pytest.raises(InputRefused, match="empty report"):
        session.sign("   ")
    assert os.path.exists(store.path)
