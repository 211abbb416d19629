"""The words every layer shares about a reading, typed once: a radiologist's decision, a report section,
a side of the chest.

Why enums of str: their values are what the feedback store, the exports and the report text already
hold ("present", "FINDINGS", ...), so `Decision("present")` reads an old event and `Decision.PRESENT ==
"present"` stays true; what changes is that a misspelt word fails where it is written, not in a
widget three layers away. This module imports nothing from RadAssist: everything may import it.
"""

from __future__ import annotations

from enum import Enum


class Decision(str, Enum):
    """The radiologist's verdict on a finding."""

    PRESENT = "present"
    ABSENT = "absent"
    UNCERTAIN = "uncertain"

    @classmethod
    def of_ai_call(cls, positive: bool) -> Decision:
        """What agreeing with the AI's call means: present for a flagged finding, absent otherwise."""
        return cls.PRESENT if positive else cls.ABSENT

    def opposite(self) -> Decision:
        """What disagreeing with a call of this value means (uncertain has no opposite)."""
        return {Decision.PRESENT: Decision.ABSENT, Decision.ABSENT: Decision.PRESENT}.get(self, self)


class Agreement(str, Enum):
    """How a decision relates to the AI's call: what the viewer colours a decision by."""

    AGREE = "agree"
    DISAGREE = "disagree"
    UNCERTAIN = "uncertain"
    READER_ONLY = "reader_only"  # a finding the AI did not assess (added by the radiologist)

    @classmethod
    def of(cls, decision: Decision, ai_positive: bool | None) -> Agreement:
        if ai_positive is None:
            return cls.READER_ONLY
        if decision is Decision.UNCERTAIN:
            return cls.UNCERTAIN
        return cls.AGREE if decision is Decision.of_ai_call(ai_positive) else cls.DISAGREE


class Section(str, Enum):
    """A part of the report, in the order the report shows them."""

    FINDINGS = "FINDINGS"
    IMPRESSION = "IMPRESSION"


class Side(str, Enum):
    """The patient's side (a PA/AP display shows the patient's right on the image's left)."""

    RIGHT = "right"
    LEFT = "left"

    @property
    def lung_mask_value(self) -> int:
        """The value of this side's lung in a lung mask (ReadResult.lung_mask): 1 right, 2 left."""
        return 1 if self is Side.RIGHT else 2
