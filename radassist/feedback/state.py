"""Replay a session's events into the state a viewer shows.

Why replay instead of storing the state: the log is the single source of truth, so a viewer that
crashed and reopens the session (or the export, or an auditor) computes exactly the same state from
it, undo/redo included. Undo and redo follow the usual editor rule: undo takes back the newest
applied action, redo re-applies the newest undone one, and any new action forgets what was undone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from radassist.feedback.events import DECISION_OF, UNDOABLE, Event, EventType
from radassist.results import Measurement, MeasurementKind
from radassist.vocabulary import Decision, Section


@dataclass
class FindingState:
    label: str
    display_name: str
    ai_probability: float | None = None  # None for a finding the radiologist added
    ai_threshold: float | None = None
    ai_positive: bool | None = None
    decision: Decision | None = None  # None: not reviewed
    added_by_reader: bool = False
    conditional_on: str | None = None  # meaningful only when this other finding is present

    @property
    def undecided_ai_call(self) -> bool:
        """The AI flagged it and the radiologist has not said anything about it yet."""
        return bool(self.ai_positive) and self.decision is None


@dataclass
class RegionState:
    region_id: str
    label: str
    geometry: dict[str, Any]


@dataclass
class CorrectedMeasurement:
    """An AI measurement as the reader corrected it (the viewer draws this instead of the AI's lines)."""

    kind: MeasurementKind
    value: float
    points: tuple[tuple[float, float], ...]  # (row, column) image pixels, in the measurement's own order
    ai_value: float | None = None  # what the AI measured before the first correction shown
    note: str | None = None

    def as_measurement(self) -> Measurement:
        return Measurement(kind=self.kind, value=self.value, points=self.points, note=self.note)


@dataclass
class SentenceState:
    """One report sentence and where it came from (provenance survives any edit, undo and redo)."""

    sentence_id: str
    section: Section
    draft_text: str  # what the AI drafted ("" for a sentence the radiologist added)
    text: str  # what it says now ("" = deleted)
    source_label: str | None = None  # the model output it words (None: standard wording or the reader's)
    probability: float | None = None
    band: str | None = None
    kg_node: str | None = None

    @property
    def from_ai(self) -> bool:
        return bool(self.draft_text)

    @property
    def untouched_ai_text(self) -> bool:
        """An AI sentence that still says what the AI drafted (the viewer tints these)."""
        return self.from_ai and self.text == self.draft_text


@dataclass
class SessionState:
    session_id: str
    image_key: str = ""
    reader_id: str = ""
    opened_utc: str = ""
    key_source: str = ""
    rows: int = 0
    columns: int = 0
    model_id: str = ""
    model_sha256: str = ""
    findings: dict[str, FindingState] = field(default_factory=dict)
    regions: dict[str, RegionState] = field(default_factory=dict)
    measurements: dict[MeasurementKind, CorrectedMeasurement] = field(default_factory=dict)  # corrected only
    sentences: dict[str, SentenceState] = field(default_factory=dict)
    signed_text: str | None = None
    signed_utc: str | None = None
    signed_ai_draft_unchanged: bool = False  # signed with AI calls unreviewed, as the reader confirmed
    addenda: list[str] = field(default_factory=list)
    undo_stack: list[str] = field(default_factory=list)  # event ids of applied undoable actions
    redo_stack: list[str] = field(default_factory=list)  # event ids of undone actions, newest last
    last_seq: int = 0
    event_count: int = 0

    @property
    def signed(self) -> bool:
        return self.signed_text is not None

    @property
    def can_undo(self) -> bool:
        return bool(self.undo_stack) and not self.signed

    @property
    def can_redo(self) -> bool:
        return bool(self.redo_stack) and not self.signed

    @property
    def has_ai_result(self) -> bool:
        return bool(self.model_id)

    @property
    def has_reader_work(self) -> bool:
        """Decisions, regions or edits the radiologist made and has not taken back."""
        return bool(self.undo_stack)

    def undecided_ai_calls(self) -> list[str]:
        """Labels the AI flagged that the radiologist has not decided (signing waits for these)."""
        return [label for label, finding in self.findings.items() if finding.undecided_ai_call]

    def section_text(self, section: Section) -> str:
        return " ".join(s.text for s in self.sentences.values() if s.section is section and s.text)

    def current_report_text(self) -> str:
        if self.signed_text is not None:
            return self.signed_text
        return "\n\n".join(f"{section.value}: {self.section_text(section)}" for section in Section) + "\n"


def replay(events: Iterable[Event]) -> SessionState:
    """The state after these events (one session's, in store order)."""
    events = list(events)
    if not events:
        raise ValueError("a session has at least one event")
    state = SessionState(session_id=events[0].session_id)
    facts: set[str] = set()  # event ids of non-undoable events (opening, AI output, signing)
    for event in events:
        state.last_seq = max(state.last_seq, event.seq or 0)
        state.event_count += 1
        if event.type in UNDOABLE:
            state.undo_stack.append(event.event_id)
            state.redo_stack.clear()
        elif event.type is EventType.UNDO and state.undo_stack:
            state.redo_stack.append(state.undo_stack.pop())
        elif event.type is EventType.REDO and state.redo_stack:
            state.undo_stack.append(state.redo_stack.pop())
        elif event.type not in (EventType.UNDO, EventType.REDO):
            facts.add(event.event_id)
    # Apply facts and the surviving actions in log order: later events win.
    surviving = set(state.undo_stack)
    for event in events:
        if event.event_id in facts or event.event_id in surviving:
            _apply(state, event)
    return state


def _apply(state: SessionState, event: Event) -> None:
    payload = event.payload
    kind = event.type
    if kind is EventType.STUDY_OPENED:
        state.image_key = event.image_key
        state.reader_id = event.reader_id
        state.opened_utc = event.ts_utc
        state.key_source = payload["key_source"]
        state.rows, state.columns = int(payload["rows"]), int(payload["columns"])
    elif kind is EventType.AI_RESULT_SHOWN:
        state.model_id, state.model_sha256 = payload["model_id"], payload["model_sha256"]
        for f in payload["findings"]:
            finding = state.findings.setdefault(f["label"], FindingState(f["label"], f["display_name"]))
            finding.ai_probability, finding.ai_threshold = f["probability"], f["threshold"]
            finding.ai_positive = f["positive"]
            finding.conditional_on = f.get("conditional_on")
        for s in payload["report"]:
            state.sentences[s["sentence_id"]] = SentenceState(
                s["sentence_id"], Section(s["section"]), s["text"], s["text"], s.get("source_label"),
                s.get("probability"), s.get("band"), s.get("kg_node"))
    elif kind in DECISION_OF:
        label = payload["label"]
        if label not in state.findings:
            state.findings[label] = FindingState(label, payload.get("display_name", label), added_by_reader=True)
        state.findings[label].decision = DECISION_OF[kind]
    elif kind in (EventType.REGION_DRAWN, EventType.REGION_CHANGED):
        state.regions[payload["region_id"]] = RegionState(payload["region_id"], payload["label"], payload["geometry"])
    elif kind is EventType.MEASUREMENT_CORRECTED:
        measured, before = payload["after"], payload.get("before") or {}
        earlier = state.measurements.get(MeasurementKind(payload["kind"]))
        state.measurements[MeasurementKind(payload["kind"])] = CorrectedMeasurement(
            MeasurementKind(payload["kind"]), float(measured["value"]),
            tuple((float(row), float(column)) for row, column in measured["points"]),
            earlier.ai_value if earlier else before.get("value"), measured.get("note"))
    elif kind is EventType.REPORT_SENTENCE_EDITED:
        sentence_id = payload["sentence_id"]
        sentence = state.sentences.get(sentence_id)
        if sentence is None:
            sentence = state.sentences[sentence_id] = SentenceState(
                sentence_id, Section(payload.get("section", Section.FINDINGS)), "", "")
        sentence.text = payload["after"]
    elif kind is EventType.REPORT_SIGNED and state.signed_text is None:  # the first signature is the signature
        state.signed_text = payload["text"]
        state.signed_utc = event.ts_utc
        state.signed_ai_draft_unchanged = bool(payload.get("ai_draft_unchanged", False))
    elif kind is EventType.ADDENDUM_ADDED:
        state.addenda.append(payload["text"])
