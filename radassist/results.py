"""The result of reading one radiograph: the plain data object every host (CLI, Qt, Slicer) shows.

Nothing here computes anything; producers fill it, consumers (report, viewer, feedback store) read it.

Why a module of the bottom layer (beside `vocabulary`, `image`, `paths`, `errors`) and not part of
`radassist.pipeline`: its producers and consumers sit in every layer (imaging writes the QA verdict and
the CTR, explain the evidence, findings the draft report, feedback records it, the hosts show it), so
inside `pipeline` it made each of them import upward. Why loose modules and not a `radassist/core/`
package holding them: `radassist.vocabulary` and `radassist.paths` were already imported from the
package root by every layer, and one more module there keeps every import path one name long. Imports
only `radassist.image` (the metadata a result carries), also of the bottom layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from radassist.image import ImageMetadata


class AgeGroup(str, Enum):
    ADULT = "adult"
    PEDIATRIC = "pediatric"

    @classmethod
    def of_age(cls, years: float) -> AgeGroup:
        """Pediatric under 18 years, adult from 18."""
        return cls.PEDIATRIC if years < 18.0 else cls.ADULT


class AgeSource(str, Enum):
    HEADER = "header"  # DICOM PatientAge, or StudyDate - PatientBirthDate
    IMAGE_ESTIMATE = "image estimate"  # the chest check's pediatric-vs-adult output
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DomainVerdict:
    """Is the film inside what the model was validated on (age group, image distribution)? Outside means the
    findings are shown with a visible 'outside validated use' notice, never silently."""

    inside: bool
    notice: str = ""  # why not inside, one sentence for the reader ("" when inside)
    age_group: AgeGroup | None = None
    age_source: AgeSource = AgeSource.UNKNOWN


@dataclass
class QAVerdict:
    """Whether the image may be read as a frontal chest radiograph, and why."""

    accepted: bool
    reason: str  # one sentence; for a refusal, the reason a radiologist understands
    checks: dict[str, Any] = field(default_factory=dict)  # name -> measured value / verdict
    domain: DomainVerdict | None = None  # set once the image checks ran


@dataclass
class EvidenceStatement:
    """A radiomics figure translated for the radiologist, e.g. 'mean density 18% higher than left lung'."""

    text: str
    feature: str  # pyradiomics feature name, e.g. "original_firstorder_Mean"
    region: str  # "salient", "right_lung", "left_lung"
    value: float
    reference: float | None = None  # the comparison value (e.g. contralateral lung)


class MeasurementKind(str, Enum):
    """What a measurement measures (its value is the key `read --json` shows under `measurements`)."""

    CARDIOTHORACIC_RATIO = "cardiothoracic_ratio"  # widest heart width / widest inner thoracic width


@dataclass
class Measurement:
    """A quantity measured on the image (not a model probability), e.g. the cardiothoracic ratio."""

    kind: MeasurementKind
    value: float  # in `unit`; a ratio has unit ""
    unit: str = ""
    points: tuple[tuple[float, float], ...] = ()  # (row, column) end points of the measured lines, image pixels
    note: str | None = None  # a caveat to show with the value, e.g. "AP film: the ratio overestimates heart size"


NO_ZONE = "—"  # a finding's zone cell where the evidence names no zone (`Finding.zone_text`)


@dataclass
class Finding:
    """One model output, calibrated, with where the model looked."""

    label: str  # model label id from the model card, e.g. "pneumonia", "opacity", "viral_pattern"
    display_name: str
    probability: float  # calibrated (temperature-scaled)
    threshold: float  # operating threshold from the model card
    positive: bool  # probability >= threshold
    zone: str | None = None  # lung zone of the saliency peak, e.g. "right lower zone"
    peak_rc: tuple[int, int] | None = None  # saliency peak (row, column) in image pixels
    evidence: list[EvidenceStatement] = field(default_factory=list)
    conditional_on: str | None = None  # e.g. "pneumonia" for viral_pattern (meaningful only if that is positive)

    @property
    def zone_text(self) -> str:
        """The findings table's zone cell, the same in every host: the zone, or "—" where none is named."""
        return self.zone or NO_ZONE

    @property
    def zone_explanation(self) -> str:
        """What the zone cell means, for its tooltip."""
        if self.zone:
            return f"Zone: {self.zone}, where the evidence peaks"
        return (f"Zone {NO_ZONE}: the evidence lies outside the lung fields or does not point to one lung; "
                "no side is named rather than a guessed one")


class AnatomySection(str, Enum):
    """The parts of FINDINGS a radiologist expects, in report order."""

    LUNGS = "Lungs"
    PLEURA = "Pleura"
    HEART_AND_MEDIASTINUM = "Heart and mediastinum"
    LINES_AND_TUBES = "Lines and tubes"
    BONES = "Bones"


@dataclass
class ReportSentence:
    """One sentence of the draft report with where it came from."""

    section: str  # "FINDINGS" or "IMPRESSION"
    text: str
    kg_node: str | None  # IRI of the knowledge-graph node that produced it
    source_label: str | None  # model label id the sentence speaks for (None for boilerplate)
    probability: float | None
    band: str | None  # hedging band used, e.g. "likely"
    sentence_id: str = ""  # stable id for per-sentence edit logging
    anatomy: AnatomySection | None = None  # the FINDINGS part it belongs to (None in IMPRESSION)


@dataclass
class DraftReport:
    sentences: list[ReportSentence]

    def section_text(self, section: str) -> str:
        return " ".join(s.text for s in self.sentences if s.section == section)

    def findings_by_anatomy(self) -> str:
        """FINDINGS one line per anatomy part ("Lungs: ...", "Pleura: ..."); sentences without a part first."""
        said = [s for s in self.sentences if s.section == "FINDINGS"]
        lines = [" ".join(s.text for s in said if s.anatomy is None)]
        lines += [f"{part.value}: " + " ".join(s.text for s in said if s.anatomy is part)
                  for part in AnatomySection if any(s.anatomy is part for s in said)]
        return "\n".join(line for line in lines if line)

    def text(self) -> str:
        by_anatomy = any(s.anatomy is not None for s in self.sentences)
        findings = ("\n" if by_anatomy else " ") + self.findings_by_anatomy()
        return f"FINDINGS:{findings}\n\nIMPRESSION: {self.section_text('IMPRESSION')}\n"


@dataclass
class ReadResult:
    """Everything the AI says about one image."""

    meta: ImageMetadata
    qa: QAVerdict
    model_id: str = ""
    model_sha256: str = ""
    provider: str = ""
    findings: list[Finding] = field(default_factory=list)
    # label -> float32 (rows, cols) in [0, 1]; a read fills it with explain.saliency.SaliencyMaps (lazy)
    saliency: Mapping[str, np.ndarray] = field(default_factory=dict)
    lung_mask: np.ndarray | None = None  # uint8 (rows, cols): 0 background, 1 right lung, 2 left lung
    radiomics_table: dict[str, dict[str, float]] = field(default_factory=dict)  # region -> feature -> value
    report: DraftReport | None = None
    embedding_distance: float | None = None
    measurements: dict[MeasurementKind, Measurement] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def finding(self, label: str) -> Finding | None:
        return next((f for f in self.findings if f.label == label), None)

    def condition_met(self, finding: Finding) -> bool:
        """A conditional output (viral_pattern | pneumonia) means something only when its condition is positive;
        hosts show, flag and overlay it only then."""
        if finding.conditional_on is None:
            return True
        condition = self.finding(finding.conditional_on)
        return condition is not None and condition.positive and self.condition_met(condition)

    def flagged(self) -> list[Finding]:
        """Positive findings whose condition holds: what a triage list, a findings table or an overlay flags."""
        return [f for f in self.findings if f.positive and self.condition_met(f)]
