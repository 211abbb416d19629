"""The one door every radiologist action leaves the viewer through.

Widgets never talk to the feedback store directly: they call an `EventSink`. The viewer records into
the store through `FeedbackSink` (one radassist.feedback.FeedbackSession per opened image); tests and
`radassist view --no-record` use `RecordingSink`. Keeping this narrow means a change in how feedback is
stored touches one adapter, not the widgets.

Undo/redo follow the store's rule (undo takes back the newest action, a new action forgets what was
undone); the viewer's undo stack pushes exactly the undoable events below, so both stacks agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from radassist.io.image import Radiograph
from radassist.pipeline.result import ReadResult

# The radiologist's verdict on a finding (the feedback store's vocabulary): Accept = present, Reject = absent.
DECISIONS = ("present", "absent", "uncertain")


class EventSink(Protocol):
    """What the viewer reports. Region geometry is in image pixels, see annotations.Region.geometry."""

    def study_opened(self, image: Radiograph) -> None: ...

    def ai_result_shown(self, result: ReadResult) -> None: ...

    def finding_decided(self, label: str, decision: str) -> None: ...

    def finding_added(self, label: str, display_name: str) -> None: ...

    def region_drawn(self, label: str, geometry: dict[str, Any]) -> None: ...

    def sentence_edited(self, sentence_id: str, section: str, before: str, after: str) -> None: ...

    def report_signed(self, text: str) -> None: ...

    def undo(self) -> None: ...

    def redo(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class RecordingSink:
    """Keeps events in memory, in order: for tests, and for sessions the user chose not to record."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def last(self, name: str) -> dict[str, Any]:
        return next(payload for event, payload in reversed(self.events) if event == name)

    def study_opened(self, image: Radiograph) -> None:
        self.events.append(("study_opened", {"name": image.name, "shape": image.shape}))

    def ai_result_shown(self, result: ReadResult) -> None:
        self.events.append(("ai_result_shown", {"model_id": result.model_id,
                                                "labels": [f.label for f in result.findings]}))

    def finding_decided(self, label: str, decision: str) -> None:
        self.events.append(("finding_decided", {"label": label, "decision": decision}))

    def finding_added(self, label: str, display_name: str) -> None:
        self.events.append(("finding_added", {"label": label, "display_name": display_name}))

    def region_drawn(self, label: str, geometry: dict[str, Any]) -> None:
        self.events.append(("region_drawn", {"label": label, "geometry": geometry}))

    def sentence_edited(self, sentence_id: str, section: str, before: str, after: str) -> None:
        self.events.append(("sentence_edited", {"sentence_id": sentence_id, "section": section,
                                                "before": before, "after": after}))

    def report_signed(self, text: str) -> None:
        self.events.append(("report_signed", {"text": text}))

    def undo(self) -> None:
        self.events.append(("undo", {}))

    def redo(self) -> None:
        self.events.append(("redo", {}))

    def close(self) -> None:
        self.events.append(("close", {}))


class FeedbackSink:
    """Records into the feedback store (SQLite): one FeedbackSession per opened image, one store per viewer."""

    def __init__(self, store_path: str | os.PathLike[str] | None = None, reader_id: str | None = None):
        from radassist.feedback import EventStore

        self.store = EventStore(store_path)
        self._reader_id = reader_id
        self.session = None

    def study_opened(self, image: Radiograph) -> None:
        from radassist.feedback import FeedbackSession

        self.session = FeedbackSession(self.store, reader_id=self._reader_id)
        self.session.open_study(image)

    def ai_result_shown(self, result: ReadResult) -> None:
        self._session().ai_result_shown(result)

    def finding_decided(self, label: str, decision: str) -> None:
        session = self._session()
        {"present": session.accept, "absent": session.reject, "uncertain": session.mark_uncertain}[decision](label)

    def finding_added(self, label: str, display_name: str) -> None:
        self._session().add_finding(label, display_name)

    def region_drawn(self, label: str, geometry: dict[str, Any]) -> None:
        self._session().draw_region(label, geometry)

    def sentence_edited(self, sentence_id: str, section: str, before: str, after: str) -> None:
        self._session().edit_sentence(sentence_id, before, after, section=section)

    def report_signed(self, text: str) -> None:
        self._session().sign(text)

    def undo(self) -> None:
        self._session().undo()

    def redo(self) -> None:
        self._session().redo()

    def close(self) -> None:
        self.store.close()

    def _session(self):
        if self.session is None:
            from radassist.errors import InputRefused

            raise InputRefused("no study is open, so there is nothing to record feedback on")
        return self.session
