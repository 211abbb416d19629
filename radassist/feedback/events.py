"""What a reading session records: the event types, their payloads, and the checks every event passes.

Why a closed list of types with required payload keys: the log is the only record of what the
radiologist did, and it is append-only, so a malformed event could never be corrected afterwards.
Events carry no PHI: images are named by a keyed image key (identity.py), the AI result is reduced
to its outputs (no metadata), and free text is scrubbed of known names before it reaches an event.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from radassist.errors import InputRefused
from radassist.results import MeasurementKind, ReadResult
from radassist.vocabulary import Decision


class EventType(str, Enum):
    STUDY_OPENED = "study_opened"
    AI_RESULT_SHOWN = "ai_result_shown"
    FINDING_ACCEPTED = "finding_accepted"  # the radiologist says the finding is present
    FINDING_REJECTED = "finding_rejected"  # ... absent
    FINDING_UNCERTAIN = "finding_uncertain"  # ... cannot tell
    FINDING_ADDED = "finding_added"  # present, and the AI did not flag it (may be a label the model lacks)
    REGION_DRAWN = "region_drawn"
    REGION_CHANGED = "region_changed"
    MEASUREMENT_CORRECTED = "measurement_corrected"  # the reader moved the lines of an AI measurement (e.g. the CTR)
    REPORT_SENTENCE_EDITED = "report_sentence_edited"
    REPORT_SIGNED = "report_signed"  # once per session; payload says whether the AI draft was signed unreviewed
    ADDENDUM_ADDED = "addendum_added"  # text added to a signed report (never a second signature)
    UNDO = "undo"
    REDO = "redo"


# The radiologist's actions that undo/redo act on; the others (opening, AI output, signing) are facts.
UNDOABLE: frozenset[EventType] = frozenset({
    EventType.FINDING_ACCEPTED, EventType.FINDING_REJECTED, EventType.FINDING_UNCERTAIN,
    EventType.FINDING_ADDED, EventType.REGION_DRAWN, EventType.REGION_CHANGED,
    EventType.MEASUREMENT_CORRECTED, EventType.REPORT_SENTENCE_EDITED,
})

DECISION_OF: dict[EventType, Decision] = {
    EventType.FINDING_ACCEPTED: Decision.PRESENT,
    EventType.FINDING_REJECTED: Decision.ABSENT,
    EventType.FINDING_UNCERTAIN: Decision.UNCERTAIN,
    EventType.FINDING_ADDED: Decision.PRESENT,
}
# The event that records each decision on a finding the AI assessed.
EVENT_OF_DECISION: dict[Decision, EventType] = {
    Decision.PRESENT: EventType.FINDING_ACCEPTED,
    Decision.ABSENT: EventType.FINDING_REJECTED,
    Decision.UNCERTAIN: EventType.FINDING_UNCERTAIN,
}

REQUIRED_KEYS: dict[EventType, frozenset[str]] = {
    EventType.STUDY_OPENED: frozenset({"key_source", "rows", "columns"}),
    EventType.AI_RESULT_SHOWN: frozenset({"model_id", "model_sha256", "findings", "thresholds", "report"}),
    EventType.FINDING_ACCEPTED: frozenset({"label"}),
    EventType.FINDING_REJECTED: frozenset({"label"}),
    EventType.FINDING_UNCERTAIN: frozenset({"label"}),
    EventType.FINDING_ADDED: frozenset({"label", "display_name"}),
    EventType.REGION_DRAWN: frozenset({"region_id", "label", "geometry"}),
    EventType.REGION_CHANGED: frozenset({"region_id", "label", "geometry"}),
    # kind: a MeasurementKind value; before/after: {"value": float, "points": [[row, column], ...]} image pixels,
    # optional "note" (the caveat shown with the value, e.g. the AP-film one)
    EventType.MEASUREMENT_CORRECTED: frozenset({"kind", "before", "after"}),
    EventType.REPORT_SENTENCE_EDITED: frozenset({"sentence_id", "before", "after"}),
    EventType.REPORT_SIGNED: frozenset({"text"}),  # optional: ai_draft_unchanged (bool), undecided (labels)
    EventType.ADDENDUM_ADDED: frozenset({"text"}),
    EventType.UNDO: frozenset({"target_event_id"}),
    EventType.REDO: frozenset({"target_event_id"}),
}

GEOMETRY_KINDS = ("polygon", "rectangle", "ellipse")


@dataclass(frozen=True)
class Event:
    """One row of the log. `seq` is the store's order (None until stored)."""

    event_id: str
    session_id: str
    ts_utc: str  # ISO 8601, UTC, microseconds
    reader_id: str
    image_key: str
    type: EventType
    payload: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None

    def payload_json(self) -> str:
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":"), allow_nan=False)


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def new_event(event_type: EventType | str, *, session_id: str, reader_id: str, image_key: str,
              payload: dict[str, Any]) -> Event:
    """Build and check an event; raises InputRefused for anything the log must not hold."""
    try:
        event_type = EventType(event_type)
    except ValueError:
        raise InputRefused(f"'{event_type}' is not a feedback event type") from None
    missing = REQUIRED_KEYS[event_type] - payload.keys()
    if missing:
        raise InputRefused(f"a {event_type.value} event needs {', '.join(sorted(missing))}")
    if not session_id or not reader_id or not image_key:
        raise InputRefused("every feedback event needs a session, a reader and an image")
    if event_type in (EventType.REGION_DRAWN, EventType.REGION_CHANGED):
        check_geometry(payload["geometry"])
    if event_type is EventType.MEASUREMENT_CORRECTED:
        check_measurement(payload["kind"], payload["after"])
    event = Event(event_id=uuid.uuid4().hex, session_id=session_id, ts_utc=utc_now_iso(), reader_id=reader_id,
                  image_key=image_key, type=event_type, payload=payload)
    try:
        event.payload_json()
    except (TypeError, ValueError) as exc:
        raise InputRefused(f"the {event_type.value} event holds a value that cannot be stored ({exc})") from None
    return event


def check_geometry(geometry: Any) -> None:
    """Regions are in image pixels, DICOM's convention (regions.py): x = column, y = row, (0, 0) = the
    top-left corner of the top-left pixel."""
    if not isinstance(geometry, dict) or geometry.get("kind") not in GEOMETRY_KINDS:
        raise InputRefused(f"a region needs a geometry with kind one of {', '.join(GEOMETRY_KINDS)}")
    kind = geometry["kind"]
    if kind == "polygon":
        points = geometry.get("points")
        if not isinstance(points, list) or len(points) < 3 or not all(_is_point(p) for p in points):
            raise InputRefused("a polygon region needs at least 3 points [x, y] in image pixels")
    else:
        names = ("x0", "y0", "x1", "y1") if kind == "rectangle" else ("cx", "cy", "rx", "ry")
        if not all(_is_number(geometry.get(name)) for name in names):
            raise InputRefused(f"a {kind} region needs {', '.join(names)} in image pixels")


def check_measurement(kind: Any, measured: Any) -> None:
    """A corrected measurement is replayed into every later state, so it must be one the viewer can draw:
    a known kind, a finite value and end points [row, column] in image pixels."""
    try:
        MeasurementKind(kind)
    except ValueError:
        raise InputRefused(f"'{kind}' is not a measurement RadAssist makes") from None
    points = measured.get("points") if isinstance(measured, dict) else None
    if not (isinstance(measured, dict) and _is_number(measured.get("value")) and isinstance(points, list)
            and points and all(_is_point(p) for p in points)):
        raise InputRefused("a corrected measurement needs a value and its end points [row, column] in image pixels")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_point(point: Any) -> bool:
    return isinstance(point, (list, tuple)) and len(point) == 2 and all(_is_number(v) for v in point)


def ai_result_payload(result: ReadResult) -> dict[str, Any]:
    """The AI's outputs as shown, without the image metadata (which is where PHI lives)."""
    findings = [
        {
            "label": f.label,
            "display_name": f.display_name,
            "probability": float(f.probability),
            "threshold": float(f.threshold),
            "positive": bool(f.positive),
            "zone": f.zone,
            "peak_rc": list(f.peak_rc) if f.peak_rc is not None else None,
            "conditional_on": f.conditional_on,
        }
        for f in result.findings
    ]
    report = [
        {
            "sentence_id": s.sentence_id or f"s{index}",
            "section": s.section,
            "text": s.text,
            "source_label": s.source_label,
            "probability": s.probability,
            "band": s.band,
            "kg_node": s.kg_node,
        }
        for index, s in enumerate(result.report.sentences if result.report else [])
    ]
    return {
        "model_id": result.model_id,
        "model_sha256": result.model_sha256,
        "provider": result.provider,
        "qa_accepted": bool(result.qa.accepted),
        "findings": findings,
        "thresholds": {f.label: float(f.threshold) for f in result.findings},
        "report": report,
        "embedding_distance": result.embedding_distance,
    }
