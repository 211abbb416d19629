"""Draft report: a `ReadResult` -> FINDINGS by anatomy part and IMPRESSION, in the style of a radiology report.

Driven by the model card's labels (whatever they are), the knowledge graph and the measurements of the read:
- each model output speaks in the anatomy part the graph gives its node (ra:reportSection: Lungs, Pleura, Heart
  and mediastinum, Lines and tubes, Bones); a measurement (the cardiothoracic ratio) speaks in its own part and
  replaces the model output of the node it measures; a part nothing covers says "Not assessed by RadAssist";
- hedging comes from the calibrated probability's band relative to the finding's own threshold;
- one location per finding: a diagnosis takes the zone of the positive finding that is its typical pattern
  (pneumonia where the opacity is), pleural findings name only the side, findings outside lungs and pleura none;
  the reconciled zone is written back onto the `Finding`, so the findings table shows the same place as the text;
- a conditional output (viral_pattern | pneumonia) is silent unless its condition is positive; a hedged pattern
  whose spread (ra:distribution) contradicts the film's (lobar, one-lung opacity vs a bilateral viral pattern) is
  not written;
- the differential comes from the graph's `suggests`, without what other outputs already state, without
  diagnoses for another age group (unknown age: without every age-restricted one) and without diagnoses whose
  typical patterns all have the other spread;
- a normal statement only when every covered finding is negative AND QA placed the film inside the validated
  domain; it names the parts it covers;
- radiomics evidence is never a sentence: it stays in `Finding.evidence` (evidence panel, `read --json`).

Every sentence records the model label (or measurement) and graph node it speaks for, its probability and band,
its anatomy part and a stable id, so the viewer shows where a sentence came from and logs edits per sentence.
Summary sentences speak for the model label that came closest to its threshold (the one that would first have
changed them); "not assessed" sentences and the outside-validated-use notice have no source label.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from radassist.errors import InputRefused
from radassist.findings.film import age_group_of, domain_of, spread_of
from radassist.findings.knowledge import RA, Concept, KnowledgeGraph, Spread, load_knowledge_graph
from radassist.paths import resources_dir
from radassist.results import (
    AgeGroup,
    AnatomySection,
    DomainVerdict,
    DraftReport,
    Finding,
    Measurement,
    ReadResult,
    ReportSentence,
)

FINDINGS, IMPRESSION = "FINDINGS", "IMPRESSION"
NOT_ASSESSED_BAND = "not_assessed"
NOTICE_BAND = "notice"  # a sentence about the film's use (outside the validated domain), no model output behind it
MEASURED_BAND = "measured"
STUDY_VERDICT = "StudyVerdict"  # graph class of a study-level output (the `abnormal` label): no FINDINGS sentence
_EPSILON = 1e-6


def default_template_path() -> Path:
    return resources_dir() / "templates" / "report_en.json"


@dataclass(frozen=True)
class Band:
    name: str
    below: float | None  # upper bound of the log-odds offset from the threshold (None = unbounded)
    nlp_label: str  # what the report NLP reads back from this band's sentence

    @property
    def hedged(self) -> bool:
        return self.nlp_label == "uncertain"


@dataclass(frozen=True)
class MeasurementTemplate:
    kg_node: str  # the graph node the measurement speaks for (its model output is then not written)
    section: AnatomySection
    upper_normal: float
    normal: str
    enlarged: str
    enlarged_ap: str  # an AP film magnifies the heart
    enlarged_view_unknown: str  # neither PA nor AP recorded: the ratio may be magnified
    impression_enlarged: str | None
    impression_enlarged_ap: str | None


@dataclass(frozen=True)
class ReportTemplates:
    bands: tuple[Band, ...]
    labels: dict[str, dict[str, dict[str, str | None]]]
    generic: dict[str, dict[str, str | None]]
    not_assessed: str
    not_assessed_impression: str
    normal_impression: str
    outside_domain_impression: str
    outside_domain_notice: str
    no_definite_impression: str
    differential: dict
    measurements: dict[str, MeasurementTemplate] = field(default_factory=dict)

    def sentences_for(self, label: str, band: str) -> dict[str, str | None]:
        return self.labels.get(label, self.generic)[band]

    def band(self, name: str) -> Band:
        return next(b for b in self.bands if b.name == name)


@functools.lru_cache(maxsize=4)
def load_templates(path: str | Path | None = None) -> ReportTemplates:
    source = Path(path) if path is not None else default_template_path()
    data = json.loads(source.read_text(encoding="utf-8"))
    bands = tuple(Band(b["name"], b["below"], b["nlp_label"]) for b in data["bands"])
    if bands[-1].below is not None:
        raise ValueError(f"{source}: the last band must have no upper bound (below: null)")
    measurements = {kind: MeasurementTemplate(**{**spec, "section": AnatomySection(spec["section"])})
                    for kind, spec in data.get("measurements", {}).items()}
    return ReportTemplates(
        bands=bands, labels=data["labels"], generic=data["generic"], not_assessed=data["not_assessed"],
        not_assessed_impression=data["not_assessed_impression"], normal_impression=data["normal_impression"],
        outside_domain_impression=data["outside_domain_impression"],
        outside_domain_notice=data["outside_domain_notice"],
        no_definite_impression=data["no_definite_impression"], differential=data["differential"],
        measurements=measurements,
    )


def logit_offset(probability: float, threshold: float) -> float:
    """How far a probability lies above (+) or below (-) its threshold, in log-odds."""
    def logit(x: float) -> float:
        x = min(max(x, _EPSILON), 1 - _EPSILON)
        return math.log(x / (1 - x))

    return logit(probability) - logit(threshold)


def band_of(finding: Finding, templates: ReportTemplates | None = None) -> Band:
    templates = templates or load_templates()
    offset = logit_offset(finding.probability, finding.threshold)
    for band in templates.bands:
        if band.below is None or offset < band.below:
            return band
    raise AssertionError("unreachable: the last band is unbounded")


# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spoken:
    """One model output the report speaks for, with everything its sentences need."""

    finding: Finding
    band: Band
    node: Concept | None
    section: AnatomySection | None  # None: a study-level verdict (no FINDINGS sentence)

    @property
    def offset(self) -> float:
        return logit_offset(self.finding.probability, self.finding.threshold)


def draft_report(result: ReadResult, *, templates: ReportTemplates | None = None,
                 graph: KnowledgeGraph | None = None) -> DraftReport:
    """FINDINGS + IMPRESSION for one read. Raises InputRefused when the read produced no findings.

    Writes each reported finding's reconciled zone back onto `result.findings` (see the module docstring)."""
    templates = templates or load_templates()
    graph = graph or load_knowledge_graph()
    if not result.findings:
        reason = result.qa.reason if not result.qa.accepted else "the model produced no findings"
        raise InputRefused(f"no draft report can be written: {reason}")

    measured = {kind: m for kind, m in result.measurements.items() if kind.value in templates.measurements}
    measured_nodes = {templates.measurements[kind.value].kg_node for kind in measured}
    spoken = []
    for finding in result.findings:
        node = _node(graph, finding.label)
        if not result.condition_met(finding) or (node is not None and node.key in measured_nodes):
            continue
        section = _section_of(node, graph)
        spoken.append(_Spoken(finding, band_of(finding, templates), node, section))
    spread = _lung_spread(result, spoken)
    spoken = [s for s in spoken if not _contradicts_spread(s, spread)]
    explained_by = _reconcile_locations(spoken, graph)

    writer = _Writer(templates, graph)
    rank = {band.name: i for i, band in enumerate(templates.bands)}
    by_strength = sorted(spoken, key=lambda s: -rank[s.band.name])  # stable within a band: card order
    covered: set[AnatomySection] = set()
    for item in by_strength:  # the most certain finding is said first, as a radiologist would
        if item.section is not None:
            covered.add(item.section)
        writer.finding_sentences(item)
    enlarged = False
    for kind, measurement in measured.items():
        template = templates.measurements[kind.value]
        covered.add(template.section)
        enlarged |= writer.measurement(measurement, template, result)
    for part in AnatomySection:
        if part not in covered:
            writer.not_assessed(part)

    writer.merge_explained_impressions(explained_by)
    verdicts = [s for s in spoken if s.section is None and s.finding.positive]
    if any(s.finding.positive for s in spoken if s.section is not None) or enlarged:
        writer.drop_impressions(verdicts)  # a named finding says more than "abnormal"
    age_group = age_group_of(result)
    for lead in _differential_leads(spoken, templates):
        if writer.differential(lead, spoken, age_group, spread):
            break
    domain = domain_of(result.qa)
    if not writer.has_impression():
        writer.summary_impression(spoken, covered, domain, enlarged)
    elif not domain.inside:
        writer.outside_domain_notice(domain)
    uncovered = [part for part in AnatomySection if part not in covered]
    if uncovered:
        writer.not_assessed_impression(uncovered)
    return DraftReport(sentences=writer.ordered())


def _node(graph: KnowledgeGraph, label: str) -> Concept | None:
    try:
        return graph.node_for_model_label(label)
    except KeyError:
        return None


def _section_of(node: Concept | None, graph: KnowledgeGraph) -> AnatomySection | None:
    """The anatomy part of a model output: from the graph; a node the graph places nowhere speaks about the
    lungs (a new output without ra:locatedIn), a study-level verdict nowhere."""
    if node is not None and node.is_a(STUDY_VERDICT):
        return None
    part = graph.report_section(node.key) if node is not None else None
    return AnatomySection(part) if part else AnatomySection.LUNGS


def _lung_spread(result: ReadResult, spoken: list[_Spoken]) -> Spread | None:
    """Spread of the strongest positive lung finding that is not itself a pattern (the opacity a pattern describes)."""
    lung = [s for s in spoken if s.section is AnatomySection.LUNGS and s.finding.positive
            and not (s.node is not None and s.node.distribution)]
    lead = max(lung, key=lambda s: s.offset, default=None)
    return spread_of(result, lead.finding.label) if lead is not None else None


def _contradicts_spread(item: _Spoken, spread: Spread | None) -> bool:
    """A hedged pattern whose spread is not the film's ("viral pattern possible" for a one-lung consolidation)."""
    return (spread is not None and item.band.hedged and item.node is not None
            and item.node.distribution is not None and item.node.distribution != spread.value)


def _reconcile_locations(spoken: list[_Spoken], graph: KnowledgeGraph) -> dict[str, str]:
    """One location per finding, the same wherever it is shown (written back onto the Finding). Returns
    finding label -> label of the positive diagnosis that took its location (pneumonia where the opacity is)."""
    explained_by: dict[str, str] = {}
    anchors = sorted((s for s in spoken if s.finding.positive and s.finding.zone and s.node is not None),
                     key=lambda s: -s.offset)
    for item in spoken:
        if item.section not in (AnatomySection.LUNGS, AnatomySection.PLEURA):
            item.finding.zone = None  # heart, mediastinum, study level: a lung zone would mislead
            continue
        if item.node is None:
            continue
        typical = {c.key for c in graph.typical_patterns(item.node.key)}
        anchor = next((a for a in anchors if a is not item and a.node is not None and a.node.key in typical), None)
        if anchor is not None:
            item.finding.zone = anchor.finding.zone
            if item.finding.positive:
                explained_by.setdefault(anchor.finding.label, item.finding.label)
    return explained_by


def _differential_leads(spoken: list[_Spoken], templates: ReportTemplates) -> list[_Spoken]:
    """Positive findings in the order their differential is tried: the most specific first (a pattern
    refines its condition), then the one furthest above its threshold. The first with a differential wins."""
    eligible = [s for s in spoken if s.band.name in templates.differential["from_bands"] and s.section is not None]
    return sorted(eligible, key=lambda s: (s.finding.conditional_on is not None, s.offset), reverse=True)


_ZONE_WORDS = re.compile(r"\b(right|left) (upper|mid|lower) zone\b")


def _zone_words(text: str) -> str | None:
    match = _ZONE_WORDS.search(text.lower())
    return match.group(0) if match else None


def _side(zone: str | None) -> str:
    words = (zone or "").split()
    return words[0] if words and words[0] in ("right", "left") else ""


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class _Writer:
    """Accumulates sentences; knows how to phrase a finding, a measurement, a differential and the summaries."""

    def __init__(self, templates: ReportTemplates, graph: KnowledgeGraph):
        self.templates = templates
        self.graph = graph
        self.sentences: list[ReportSentence] = []

    def add(self, sentence: ReportSentence) -> None:
        self.sentences.append(sentence)

    def has_impression(self) -> bool:
        return any(s.section == IMPRESSION for s in self.sentences)

    def ordered(self) -> list[ReportSentence]:
        parts = list(AnatomySection)
        findings = sorted((s for s in self.sentences if s.section == FINDINGS),
                          key=lambda s: parts.index(s.anatomy) if s.anatomy is not None else -1)
        return findings + [s for s in self.sentences if s.section == IMPRESSION]

    def finding_sentences(self, item: _Spoken) -> None:
        finding, band, node = item.finding, item.band, item.node
        texts = self.templates.sentences_for(finding.label, band.name)
        for section in (FINDINGS, IMPRESSION):
            template = texts.get(section.lower())
            if not template or (section == FINDINGS and item.section is None):
                continue
            self.add(ReportSentence(section, _fill(template, finding, node, self.graph),
                                    node.iri if node else None, finding.label, round(finding.probability, 4),
                                    band.name, f"{section.lower()}-{finding.label}",
                                    item.section if section == FINDINGS else None))

    def merge_explained_impressions(self, explained_by: dict[str, str]) -> None:
        """Drop a finding's IMPRESSION sentence when the diagnosis that explains it already names its place
        ("Findings consistent with pneumonia in the left lower zone." says all "Left lower zone airspace opacity."
        says); its FINDINGS sentence stays."""
        impressions = {s.source_label: s for s in self.sentences if s.section == IMPRESSION}
        for finding_label, diagnosis_label in explained_by.items():
            finding, diagnosis = impressions.get(finding_label), impressions.get(diagnosis_label)
            zone_words = _zone_words(finding.text) if finding is not None else None
            if finding is not None and diagnosis is not None and zone_words and zone_words in diagnosis.text.lower():
                self.sentences.remove(finding)

    def drop_impressions(self, verdicts: list[_Spoken]) -> None:
        labels = {v.finding.label for v in verdicts}
        self.sentences = [s for s in self.sentences if not (s.section == IMPRESSION and s.source_label in labels)]

    def measurement(self, measurement: Measurement, template: MeasurementTemplate, result: ReadResult) -> bool:
        """The measurement's FINDINGS sentence (and IMPRESSION when abnormal). True when above normal."""
        enlarged = measurement.value > template.upper_normal
        view = (result.meta.view_position or "").upper()
        pa_film = view == "PA"
        if not enlarged:
            text = template.normal
        else:
            text = template.enlarged if pa_film else template.enlarged_ap if view == "AP" else template.enlarged_view_unknown
        impression = None if not enlarged else (template.impression_enlarged if pa_film else template.impression_enlarged_ap)
        node = self.graph.concept(template.kg_node)
        kind = measurement.kind.value
        band = MEASURED_BAND
        self.add(ReportSentence(FINDINGS, text.format(value=measurement.value), node.iri, kind, None, band,
                                f"findings-{kind}", template.section))
        if impression:
            self.add(ReportSentence(IMPRESSION, impression.format(value=measurement.value), node.iri, kind, None,
                                    band, f"impression-{kind}"))
        return enlarged

    def not_assessed(self, part: AnatomySection) -> None:
        self.add(ReportSentence(FINDINGS, self.templates.not_assessed, RA + "Thorax", None, None, NOT_ASSESSED_BAND,
                                f"findings-{part.name.lower()}-not-assessed", part))

    def outside_domain_notice(self, domain: DomainVerdict) -> None:
        text = self.templates.outside_domain_notice.format(notice=domain.notice)
        self.add(ReportSentence(IMPRESSION, text, RA + "Thorax", None, None, NOTICE_BAND,
                                "impression-outside-domain-notice"))

    def not_assessed_impression(self, parts: list[AnatomySection]) -> None:
        names = _join([p.value.lower() for p in parts])
        self.add(ReportSentence(IMPRESSION, _capitalise(self.templates.not_assessed_impression.format(parts=names)),
                                RA + "Thorax", None, None, NOT_ASSESSED_BAND, "impression-not-assessed"))

    def summary_impression(self, spoken: list[_Spoken], covered: set[AnatomySection], domain: DomainVerdict,
                           measured_abnormal: bool) -> None:
        """The impression when no finding wrote one: normal only if every covered finding (and measurement) is
        negative and the film is inside the validated domain."""
        closest = max(spoken, key=lambda s: s.offset, default=None)
        if closest is None:  # only measurements spoke
            return
        all_negative = all(s.band.name == "negative" for s in spoken) and not measured_abnormal
        parts = _join([p.value.lower() for p in AnatomySection if p in covered])
        if all_negative and domain.inside:
            text, kind, node = self.templates.normal_impression.format(parts=parts), "normal", "Normal"
        elif all_negative:
            text, kind, node = (self.templates.outside_domain_impression.format(notice=domain.notice),
                                "outside-domain", "Thorax")
        else:
            text, kind, node = self.templates.no_definite_impression, "no-definite-abnormality", "Thorax"
        self.add(ReportSentence(IMPRESSION, text, self.graph.concept(node).iri, closest.finding.label,
                                round(closest.finding.probability, 4), closest.band.name, f"impression-{kind}"))

    def differential(self, lead: _Spoken, spoken: list[_Spoken], age_group: AgeGroup | None,
                     spread: Spread | None) -> bool:
        """One impression sentence listing what the graph says the lead finding suggests, leaving out what other
        model outputs state, diagnoses for another age group and diagnoses of the other spread. False when
        there is nothing to list."""
        if lead.node is None:
            return False
        already_stated = {s.node.key for s in spoken if s.node is not None}
        items = [c.label for c in self.graph.differential(lead.node.key)
                 if c.key not in already_stated and _fits_age(c, age_group) and self._fits_spread(c, spread)]
        items = items[: self.templates.differential["max_items"]]
        if not items:
            return False
        finding = lead.finding
        self.add(ReportSentence(IMPRESSION, self.templates.differential["text"].format(items=_join(items)),
                                lead.node.iri, finding.label, round(finding.probability, 4), lead.band.name,
                                "impression-differential"))
        return True

    def _fits_spread(self, diagnosis: Concept, spread: Spread | None) -> bool:
        spreads = {p.distribution for p in [diagnosis, *self.graph.typical_patterns(diagnosis.key)] if p.distribution}
        return spread is None or not spreads or spread.value in spreads


def _fits_age(diagnosis: Concept, age_group: AgeGroup | None) -> bool:
    """Unrestricted diagnoses always; restricted ones only for a known age group they are listed for."""
    return diagnosis.age_group is None or (age_group is not None and diagnosis.age_group == age_group.value)


def _fill(template: str, finding: Finding, node: Concept | None, graph: KnowledgeGraph) -> str:
    """Fill a template; without a zone the location words are simply left out."""
    zone = graph.zone(finding.zone) if finding.zone else None
    zone_name = zone.label if zone is not None else (finding.zone or "")
    name = node.label if node is not None else finding.display_name.lower()
    text = template.format(where=f"in the {zone_name}" if zone_name else "", Where=zone_name, name=name, Name=name,
                           side=_side(zone_name))
    text = " ".join(text.split()).replace(" .", ".").replace(" ,", ",")
    return _capitalise(text)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def report_as_dict(report: DraftReport) -> dict:
    """JSON-ready view of a draft report with each sentence's provenance (for --json outputs and hosts)."""
    return {
        "findings": report.findings_by_anatomy(),
        "impression": report.section_text(IMPRESSION),
        "sentences": [{"id": s.sentence_id, "section": s.section, "anatomy": s.anatomy.value if s.anatomy else None,
                       "text": s.text, "kg_node": s.kg_node, "source_label": s.source_label,
                       "probability": s.probability, "band": s.band}
                      for s in report.sentences],
    }
