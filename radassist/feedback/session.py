"""The one API every host records feedback through: the Qt viewer, the Slicer module, `radassist read --record`.

A FeedbackSession is one reader reading one image. Each method appends one event and returns once it
is on disk; `state()` replays the log, so a host that crashed reopens the session with
`FeedbackSession.resume(session_id)` and shows exactly what it showed before.

Free text (edited sentences, the signed report) is scrubbed of the patient's name and ids before it
is stored: the session learns them from the opened image and keeps them in memory only.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from typing import Any

import numpy as np

from radassist.errors import InputRefused
from radassist.feedback.events import (
    EVENT_OF_DECISION,
    Event,
    EventType,
    ai_result_payload,
    check_geometry,
    new_event,
)
from radassist.feedback.identity import image_key_for
from radassist.feedback.regions import clipped_geometry
from radassist.feedback.scrub import name_tokens, scrub_text, scrub_typed_label
from radassist.feedback.state import SessionState, replay
from radassist.feedback.store import EventStore
from radassist.image import ImageMetadata, Radiograph
from radassist.results import ReadResult
from radassist.vocabulary import Decision, Section

HEADLESS_READER = "headless"


class SigningRefused(InputRefused):
    """A signature the rules do not allow (AI calls undecided, already signed, empty report)."""


class FeedbackSession:
    """Record one reader's reading of one image. Call open_study() first, sign() last.

    The reader's identity is given by the host (asked once per viewer session), never taken silently
    from the operating system: a resumed session keeps the identity it was recorded with.
    """

    def __init__(self, store: EventStore | str | os.PathLike[str] | None = None, *, reader_id: str | None = None,
                 session_id: str | None = None):
        if not (reader_id and reader_id.strip()) and session_id is None:
            raise InputRefused("a reading needs the reader's identity (who signs it)")
        self._owns_store = not isinstance(store, EventStore)
        self.store = store if isinstance(store, EventStore) else EventStore(store)
        self.reader_id = reader_id.strip() if reader_id else ""
        self.session_id = session_id or uuid.uuid4().hex
        self.image_key: str | None = None
        self._names: set[str] = set()
        self._identifiers: set[str] = set()

    @classmethod
    def resume(cls, session_id: str, store: EventStore | str | os.PathLike[str] | None = None, *,
               reader_id: str | None = None, radiograph: Radiograph | None = None) -> FeedbackSession:
        """Reopen a session (e.g. after a crash); pass the radiograph again to keep scrubbing its names."""
        session = cls(store, reader_id=reader_id, session_id=session_id)
        events = session.store.events(session_id)
        if not events:
            raise InputRefused(f"there is no feedback session {session_id} in {session.store.path}")
        state = replay(events)
        session.image_key = state.image_key
        if reader_id is None:
            session.reader_id = state.reader_id
        if radiograph is not None:
            session._learn_identifiers(radiograph.meta)
        return session

    # --- what the host calls -------------------------------------------------------------------

    def open_study(self, radiograph: Radiograph) -> str:
        """Start reading this image; returns its pseudonymous image key."""
        return self._open(radiograph.meta, radiograph.pixels)

    def ai_result_shown(self, result: ReadResult) -> Event:
        return self._record(EventType.AI_RESULT_SHOWN, ai_result_payload(result))

    def decide(self, label: str, decision: Decision) -> Event:
        """The radiologist's verdict on a finding on screen (present, absent or uncertain)."""
        return self._record(EVENT_OF_DECISION[Decision(decision)], {"label": self._known_label(label)})

    def accept(self, label: str) -> Event:
        """The radiologist says the finding is present."""
        return self.decide(label, Decision.PRESENT)

    def reject(self, label: str) -> Event:
        """The radiologist says the finding is absent."""
        return self.decide(label, Decision.ABSENT)

    def mark_uncertain(self, label: str) -> Event:
        return self.decide(label, Decision.UNCERTAIN)

    def add_finding(self, label: str, display_name: str | None = None) -> Event:
        """A finding the radiologist sees that the AI did not call (any label, also one the model lacks)."""
        if not label or not label.strip():
            raise InputRefused("an added finding needs a label")
        label, shown = self._scrub_typed(label.strip(), display_name)  # typed text: no names into the store
        return self._record(EventType.FINDING_ADDED, {"label": label, "display_name": shown})

    def draw_region(self, label: str, geometry: dict[str, Any]) -> str:
        """Outline a region (geometry in image pixels, see events.check_geometry; clipped to the image);
        returns its region id."""
        region_id = uuid.uuid4().hex[:12]
        self._record(EventType.REGION_DRAWN, {"region_id": region_id, "label": self._scrub_typed(label)[0],
                                              "geometry": self._clipped(geometry)})
        return region_id

    def change_region(self, region_id: str, *, geometry: dict[str, Any] | None = None,
                      label: str | None = None) -> Event:
        current = self.state().regions.get(region_id)
        if current is None:
            raise InputRefused(f"there is no region {region_id} in this session")
        return self._record(EventType.REGION_CHANGED, {
            "region_id": region_id, "label": self._scrub_typed(label)[0] if label else current.label,
            "geometry": self._clipped(geometry) if geometry else current.geometry})

    def correct_measurement(self, kind: str, before: dict[str, Any], after: dict[str, Any]) -> Event:
        """The reader moved an AI measurement's lines: before/after are {"value", "points"} (image pixels)."""
        return self._record(EventType.MEASUREMENT_CORRECTED, {"kind": kind, "before": before, "after": after})

    def edit_sentence(self, sentence_id: str, before: str, after: str, *,
                      section: Section = Section.FINDINGS) -> Event:
        """Replace a report sentence's text (before = what it said; "" for a new sentence; after "" deletes)."""
        current = self.state().sentences.get(sentence_id)
        shown = current.text if current else ""
        if self._scrub(before) != shown:
            raise InputRefused(f"sentence {sentence_id} does not currently read '{before}'")
        return self._record(EventType.REPORT_SENTENCE_EDITED, {
            "sentence_id": sentence_id, "section": Section(current.section if current else section).value,
            "before": shown, "after": self._scrub(after)})

    def sign(self, report_text: str, *, ai_draft_unchanged: bool = False) -> Event:
        """Sign the report: once per session, and only when every finding the AI flagged has a decision,
        unless the reader confirmed signing the AI draft unchanged (`ai_draft_unchanged`), which the
        signature records so that exports can mark it and fine-tuning leave it out."""
        if not report_text or not report_text.strip():
            raise SigningRefused("an empty report cannot be signed")
        state = self.state()
        if state.signed:
            raise SigningRefused("this report is already signed; add an addendum instead of signing again")
        undecided = state.undecided_ai_calls()
        if undecided and not ai_draft_unchanged:
            names = ", ".join(state.findings[label].display_name for label in undecided)
            raise SigningRefused(f"the AI flagged {names} and no decision has been made on it; decide each "
                                 "flagged finding, or confirm signing the AI draft unchanged")
        return self._record(EventType.REPORT_SIGNED, {
            "text": self._scrub(report_text), "ai_draft_unchanged": bool(ai_draft_unchanged),
            "undecided": undecided}, state=state)

    def add_addendum(self, text: str) -> Event:
        """Text added to a signed report: a new event under the same signature, never a second one."""
        if not text or not text.strip():
            raise InputRefused("an empty addendum cannot be added")
        if not self.state().signed:
            raise InputRefused("only a signed report takes an addendum; edit the report instead")
        return self._record(EventType.ADDENDUM_ADDED, {"text": self._scrub(text.strip())})

    def undo(self) -> bool:
        """Take back the newest action; False when there is nothing to undo."""
        state = self.state()
        if not state.can_undo:
            return False
        self._record(EventType.UNDO, {"target_event_id": state.undo_stack[-1]}, state=state)
        return True

    def redo(self) -> bool:
        state = self.state()
        if not state.can_redo:
            return False
        self._record(EventType.REDO, {"target_event_id": state.redo_stack[-1]}, state=state)
        return True

    def state(self) -> SessionState:
        events = self.store.events(self.session_id)
        if not events:
            raise InputRefused("open a study before asking for the session's state")
        return replay(events)

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> FeedbackSession:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- inside --------------------------------------------------------------------------------

    def _open(self, meta: ImageMetadata, pixels: np.ndarray | None) -> str:
        if self.image_key is not None:
            raise InputRefused("this feedback session already has an image; start a new session for another")
        key, key_source = image_key_for(self.store.secret, sop_instance_uid=meta.sop_instance_uid, pixels=pixels)
        self._learn_identifiers(meta)
        self.store.remember_source(key, meta.source_path)
        self.image_key = key
        self._record(EventType.STUDY_OPENED, {
            "key_source": key_source, "rows": int(meta.rows), "columns": int(meta.columns),
            "file_format": meta.file_format, "modality": meta.modality, "view_position": meta.view_position,
        })
        return key

    def _learn_identifiers(self, meta: ImageMetadata) -> None:
        self._names |= name_tokens(meta.patient_name)
        self._identifiers |= {v for v in (meta.patient_id, meta.study_date) if v}

    def _scrub(self, text: str) -> str:
        return scrub_text(text, names=self._names, identifiers=self._identifiers)

    def _scrub_typed(self, label: str, display_name: str | None = None) -> tuple[str, str]:
        return scrub_typed_label(label, display_name, names=self._names, identifiers=self._identifiers)

    def _clipped(self, geometry: dict[str, Any]) -> dict[str, Any]:
        check_geometry(geometry)
        state = self.state()
        return clipped_geometry(geometry, state.rows, state.columns) if state.rows and state.columns else geometry

    def _known_label(self, label: str) -> str:
        if label not in self.state().findings:
            raise InputRefused(f"'{label}' is not a finding on screen; use add_finding for a new one")
        return label

    def _record(self, event_type: EventType, payload: dict[str, Any], *, state: SessionState | None = None) -> Event:
        if self.image_key is None:
            raise InputRefused("open a study before recording feedback on it")
        if event_type is not EventType.STUDY_OPENED:
            state = state or self.state()
            if state.signed and event_type is not EventType.ADDENDUM_ADDED:
                raise SigningRefused("this report is signed and read-only; add an addendum to amend it")
        event = new_event(event_type, session_id=self.session_id, reader_id=self.reader_id,
                          image_key=self.image_key, payload=payload)
        seq = self.store.append(event)
        return replace(event, seq=seq)


def record_read(result: ReadResult, store_path: str | os.PathLike[str] | None = None, *,
                radiograph: Radiograph | None = None, reader_id: str | None = None) -> str:
    """Store a headless read (`radassist read PATH --record`, batch pre-reads) as an unsigned session.

    Returns the session id. An image without a SOP Instance UID is identified by its pixels, which are
    taken from `radiograph` or read again from the result's source path.
    """
    pixels = None
    if not result.meta.sop_instance_uid:
        if radiograph is None:
            from radassist.io import read_image

            radiograph = read_image(result.meta.source_path)
        pixels = radiograph.pixels
    with FeedbackSession(store_path, reader_id=reader_id or HEADLESS_READER) as session:
        session._open(result.meta, pixels)
        session.ai_result_shown(result)
        return session.session_id


def unsigned_sessions(store: EventStore, *, reader_id: str | None = None) -> list[SessionState]:
    """Sessions not signed yet, newest activity first: what a host offers to reopen after a crash
    (pass reader_id to leave out other readers' and headless pre-reads)."""
    by_session: dict[str, list[Event]] = {}
    for event in store.events():
        by_session.setdefault(event.session_id, []).append(event)
    states = [replay(events) for events in by_session.values()]
    open_states = [s for s in states if not s.signed and (reader_id is None or s.reader_id == reader_id)]
    return sorted(open_states, key=lambda s: s.last_seq, reverse=True)
