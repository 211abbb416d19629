"""A reading: the one owner of what a radiologist has done with one image, for every host.

The desktop viewer and the 3D Slicer module are views of a `Reading`: they call its methods for every
decision, region, measurement correction (the CTR lines), report edit, undo, redo, signature and
addendum, and draw what `reading.state` says. Each method appends its event to the store first and
then replays the session's events into the new state, so the state a host shows is always the
store's. Opening an image looks for the image's session in the store before starting a new one:
coming back to an image, reopening the viewer and resuming after a crash are one code path
(`Reading.open`).

Which session an image reopens to: its signed session if it has one (shown read-only; an addendum is
the only change it takes), else this reader's newest unsigned one, else a new session. Headless
pre-reads (`radassist batch`, `read --record`) and other readers' drafts are left alone.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import Any

from radassist.errors import InputRefused
from radassist.feedback.identity import image_key_of
from radassist.feedback.session import HEADLESS_READER, FeedbackSession
from radassist.feedback.state import SessionState, replay
from radassist.feedback.store import EventStore
from radassist.image import Radiograph
from radassist.results import Measurement, MeasurementKind, ReadResult
from radassist.vocabulary import Decision, Section


class StudyStatus(str, Enum):
    """What the study list shows per image."""

    UNREAD = "unread"  # no reader has opened it (headless pre-reads do not count)
    READ = "read"  # opened by a reader, not signed
    SIGNED = "signed"


class Reading:
    """One reader's reading of one image, backed by the store. Use `Reading.open`."""

    def __init__(self, session: FeedbackSession):
        self._session = session
        self.state: SessionState = session.state()

    @classmethod
    def open(cls, store: EventStore, radiograph: Radiograph, *, reader_id: str) -> Reading:
        """The image's reading as the store has it (see the module docstring), or a new one."""
        if not reader_id or not reader_id.strip():
            raise InputRefused("a reading needs the reader's identity (who signs it)")
        image_key, _ = image_key_of(radiograph, store.secret)
        existing = _session_to_resume(store, image_key, reader_id.strip())
        if existing is None:
            session = FeedbackSession(store, reader_id=reader_id)
            session.open_study(radiograph)
        else:
            session = FeedbackSession.resume(existing, store, reader_id=reader_id.strip(), radiograph=radiograph)
            store.remember_source(image_key, radiograph.meta.source_path)
        return cls(session)

    # --- what a host reads ------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._session.session_id

    @property
    def reader_id(self) -> str:
        return self._session.reader_id

    @property
    def signed(self) -> bool:
        return self.state.signed

    @property
    def status(self) -> StudyStatus:
        return StudyStatus.SIGNED if self.state.signed else StudyStatus.READ

    def decision(self, label: str) -> Decision | None:
        finding = self.state.findings.get(label)
        return finding.decision if finding else None

    def corrected_measurement(self, kind: MeasurementKind) -> Measurement | None:
        """The reader's correction of an AI measurement (e.g. the CTR lines) as the state has it; None when
        the AI's stands (never corrected, or every correction undone)."""
        corrected = self.state.measurements.get(MeasurementKind(kind))
        return corrected.as_measurement() if corrected else None

    # --- what a host records ----------------------------------------------------------------------

    def show_ai_result(self, result: ReadResult) -> None:
        """Record the AI result the reader sees, once per session: a reopened reading shows the same
        image and model again, and recording the draft anew would replace the reader's edits."""
        if not self.state.has_ai_result:
            self._then_refresh(lambda: self._session.ai_result_shown(result))

    def decide(self, label: str, decision: Decision) -> None:
        self._then_refresh(lambda: self._session.decide(label, decision))

    def agree(self, label: str) -> None:
        """Agree with the AI's call on this finding (present if it flagged it, absent if not)."""
        self.decide(label, Decision.of_ai_call(self._ai_positive(label)))

    def disagree(self, label: str) -> None:
        self.decide(label, Decision.of_ai_call(not self._ai_positive(label)))

    def add_finding(self, label: str, display_name: str) -> None:
        self._then_refresh(lambda: self._session.add_finding(label, display_name))

    def draw_region(self, label: str, geometry: dict[str, Any]) -> str:
        """Outline a region in image pixels (clipped to the image); returns its region id."""
        region_id = self._session.draw_region(label, geometry)
        self._refresh()
        return region_id

    def correct_measurement(self, before: Measurement, after: Measurement) -> None:
        """The reader dragged an AI measurement (e.g. the CTR lines) from `before` to `after`; undone and
        redone like any other action, and replayed on reopening (`corrected_measurement`)."""
        self._then_refresh(lambda: self._session.correct_measurement(
            after.kind.value, _measurement_payload(before), _measurement_payload(after)))

    def edit_sentence(self, sentence_id: str, text: str, *, section: Section = Section.FINDINGS) -> None:
        """Make a sentence read `text` ("" deletes it; a new id is the reader's own sentence)."""
        current = self.state.sentences.get(sentence_id)
        before = current.text if current else ""
        if text != before:
            self._then_refresh(lambda: self._session.edit_sentence(sentence_id, before, text, section=section))

    def set_section_text(self, section: Section, text: str) -> None:
        """For hosts that edit a section as plain text (the Slicer panel): AI sentences still found
        verbatim in `text` keep their provenance, the others are deleted, and whatever else `text`
        says becomes the reader's own sentence of the section."""
        remaining = " ".join(text.split())
        if remaining == self.state.section_text(section):
            return
        own = reader_sentence_id(section)
        for sentence in [s for s in self.state.sentences.values() if s.section is section and s.sentence_id != own]:
            if sentence.text and sentence.text in remaining:
                remaining = " ".join(remaining.replace(sentence.text, " ", 1).split())
            else:
                self.edit_sentence(sentence.sentence_id, "")
        self.edit_sentence(own, remaining, section=section)

    def undo(self) -> bool:
        """Take back the newest decision, region or edit; False when there is none."""
        return self._changed(self._session.undo)

    def redo(self) -> bool:
        return self._changed(self._session.redo)

    def sign(self, *, ai_draft_unchanged: bool = False) -> None:
        """Sign the report as the state has it (raises SigningRefused when the rules say no)."""
        self._then_refresh(lambda: self._session.sign(self.state.current_report_text(),
                                                      ai_draft_unchanged=ai_draft_unchanged))

    def add_addendum(self, text: str) -> None:
        self._then_refresh(lambda: self._session.add_addendum(text))

    def close(self) -> None:
        self._session.close()

    # --- inside -----------------------------------------------------------------------------------

    def _ai_positive(self, label: str) -> bool:
        finding = self.state.findings.get(label)
        if finding is None or finding.ai_positive is None:
            raise InputRefused(f"the AI made no call on '{label}' to agree or disagree with")
        return finding.ai_positive

    def _then_refresh(self, record) -> None:
        try:
            record()
        finally:
            self._refresh()

    def _changed(self, step) -> bool:
        try:
            return bool(step())
        finally:
            self._refresh()

    def _refresh(self) -> None:
        self.state = self._session.state()


def _measurement_payload(measurement: Measurement) -> dict[str, Any]:
    payload: dict[str, Any] = {"value": float(measurement.value),
                               "points": [[float(row), float(column)] for row, column in measurement.points]}
    if measurement.note:
        payload["note"] = measurement.note
    return payload


def reader_sentence_id(section: Section) -> str:
    """The id of the reader's own text in a section (what they type outside any AI sentence)."""
    return f"reader-{Section(section).value.lower()}"


def _session_to_resume(store: EventStore, image_key: str, reader_id: str) -> str | None:
    states = [replay(store.events(session_id)) for session_id in store.session_ids_of_image(image_key)]
    signed = [s for s in states if s.signed]
    if signed:
        return signed[-1].session_id
    mine = [s for s in states if s.reader_id == reader_id]
    return mine[-1].session_id if mine else None


def study_statuses(store: EventStore, paths: list[str | os.PathLike[str]]) -> dict[str, StudyStatus]:
    """{absolute path: status} for image files (a file no reader has opened is unread)."""
    keys = store.image_keys_of_sources(paths)
    statuses = {os.path.abspath(path): StudyStatus.UNREAD for path in paths}
    for path, image_key in keys.items():
        states = [replay(store.events(s)) for s in store.session_ids_of_image(image_key)]
        if any(s.signed for s in states):
            statuses[path] = StudyStatus.SIGNED
        elif any(s.reader_id != HEADLESS_READER for s in states):
            statuses[path] = StudyStatus.READ
    return statuses
