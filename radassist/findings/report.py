"""Draft report: a `ReadResult` -> FINDINGS and IMPRESSION sentences in the style of a radiology report.

Wording is data (resources/templates/report_en.json): hedging comes from the calibrated probability's
band relative to the finding's own threshold, zone names from the saliency peak via the knowledge graph,
the differential from the graph's `suggests` relations, quantitative support from the radiomics evidence.
Every sentence records the model label and graph node it speaks for, its probability and band, and a
stable id, so the viewer can show where a sentence came from and log the radiologist's edits per sentence.

Summary sentences ("The lungs are clear.", the normal impression) speak for the whole read: they carry the
model label that came closest to its threshold (the one that would first have changed the sentence).
The "not assessed" note is the one sentence no model output produced (source_label None).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from radassist.errors import InputRefused
from radassist.findings.knowledge import RA, Concept, KnowledgeGraph, load_knowledge_graph
from radassist.paths import resources_dir
from radassist.pipeline.result import DraftReport, Finding, ReadResult, ReportSentence

FINDINGS, IMPRESSION = "FINDINGS", "IMPRESSION"
_EPSILON = 1e-6


def default_template_path() -> Path:
    return resources_dir() / "templates" / "report_en.json"


@dataclass(frozen=True)
class Band:
    name: str
    below: float | None  # upper bound of the log-odds offset from the threshold (None = unbounded)
    nlp_label: str  # what the report NLP reads back from this band's sentence


@dataclass(frozen=True)
class ReportTemplates:
    bands: tuple[Band, ...]
    labels: dict[str, dict[str, dict[str, str | None]]]
    generic: dict[str, dict[str, str | None]]
    normal: dict[str, str]
    no_definite_disease_impression: str
    differential: dict
    evidence: dict
    not_assessed_note: str | None

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
    return ReportTemplates(
        bands=bands, labels=data["labels"], generic=data["generic"], normal=data["normal"],
        no_definite_disease_impression=data["no_definite_disease_impression"],
        differential=data["differential"], evidence=data["evidence"],
        not_assessed_note=data.get("not_assessed_note"),
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
def draft_report(result: ReadResult, *, templates: ReportTemplates | None = None,
                 graph: KnowledgeGraph | None = None) -> DraftReport:
    """FINDINGS + IMPRESSION for one read. Raises InputRefused when the read produced no findings."""
    templates = templates or load_templates()
    graph = graph or load_knowledge_graph()
    if not result.findings:
        reason = result.qa.reason if not result.qa.accepted else "the model produced no findings"
        raise InputRefused(f"no draft report can be written: {reason}")

    reported = [f for f in result.findings if _reportable(f, result)]
    bands = {f.label: band_of(f, templates) for f in reported}
    writer = _Writer(templates, graph)
    abnormal = [f for f in reported if bands[f.label].name != "negative"]
    closest = max(reported, key=lambda f: logit_offset(f.probability, f.threshold))  # speaks for summaries

    if not abnormal:
        writer.summary(FINDINGS, "normal", templates.normal["findings"], "ClearLungs", closest, bands[closest.label])
    rank = {band.name: i for i, band in enumerate(templates.bands)}
    by_strength = sorted(reported, key=lambda f: -rank[bands[f.label].name])  # stable within a band: card order
    for finding in by_strength:  # the most certain finding is said first, as a radiologist would
        writer.finding_sentences(finding, bands[finding.label])
        if bands[finding.label].name in templates.evidence["from_bands"]:
            writer.evidence(finding, bands[finding.label])
    if templates.not_assessed_note:
        writer.add(ReportSentence(FINDINGS, templates.not_assessed_note, RA + "Thorax", None, None,
                                  "not_assessed", "findings-not-assessed"))

    if not any(s.section == IMPRESSION for s in writer.sentences):
        if abnormal:  # only below-threshold (indeterminate) findings
            writer.summary(IMPRESSION, "no-definite-disease", templates.no_definite_disease_impression, "Normal",
                           closest, bands[closest.label])
        else:
            writer.summary(IMPRESSION, "normal", templates.normal["impression"], "Normal", closest, bands[closest.label])
    for lead in _differential_leads(reported, bands, templates):
        if writer.differential(lead, bands[lead.label], [f.label for f in result.findings]):
            break
    return DraftReport(sentences=writer.ordered())


def _reportable(finding: Finding, result: ReadResult) -> bool:
    """A conditional output (viral_pattern | pneumonia) is meaningful only when its condition is positive."""
    if finding.conditional_on is None:
        return True
    parent = result.finding(finding.conditional_on)
    return parent is not None and parent.positive


def _differential_leads(reported: list[Finding], bands: dict[str, Band], templates: ReportTemplates) -> list[Finding]:
    """Positive findings in the order their differential is tried: the most specific first (a pattern
    refines its condition), then the one furthest above its threshold. The first with a differential wins."""
    eligible = [f for f in reported if bands[f.label].name in templates.differential["from_bands"]]
    return sorted(eligible, key=lambda f: (f.conditional_on is not None, logit_offset(f.probability, f.threshold)),
                  reverse=True)


class _Writer:
    """Accumulates sentences; knows how to phrase one finding, its evidence and a differential."""

    def __init__(self, templates: ReportTemplates, graph: KnowledgeGraph):
        self.templates = templates
        self.graph = graph
        self.sentences: list[ReportSentence] = []
        self._quoted: set[str] = set()  # evidence already quoted (findings may share the same region)

    def add(self, sentence: ReportSentence) -> None:
        self.sentences.append(sentence)

    def ordered(self) -> list[ReportSentence]:
        return [s for s in self.sentences if s.section == FINDINGS] + [s for s in self.sentences if s.section == IMPRESSION]

    def node(self, label: str) -> Concept | None:
        try:
            return self.graph.node_for_model_label(label)
        except KeyError:
            return None

    def summary(self, section: str, kind: str, text: str, node_key: str, finding: Finding, band: Band) -> None:
        self.add(ReportSentence(section, text, self.graph.concept(node_key).iri, finding.label,
                                round(finding.probability, 4), band.name, f"{section.lower()}-{kind}"))

    def finding_sentences(self, finding: Finding, band: Band) -> None:
        node = self.node(finding.label)
        texts = self.templates.sentences_for(finding.label, band.name)
        for section in (FINDINGS, IMPRESSION):
            template = texts.get(section.lower())
            if template:
                text = _fill(template, finding, node, self.graph)
                self.add(ReportSentence(section, text, node.iri if node else None, finding.label,
                                        round(finding.probability, 4), band.name,
                                        f"{section.lower()}-{finding.label}"))

    def evidence(self, finding: Finding, band: Band) -> None:
        statements = [s for s in sorted(finding.evidence, key=lambda s: s.region != "salient") if s.text not in self._quoted]
        node = self.node(finding.label)
        for index, statement in enumerate(statements[: self.templates.evidence["max_statements"]]):
            self._quoted.add(statement.text)
            self.add(ReportSentence(FINDINGS, statement.text, node.iri if node else None, finding.label,
                                    round(finding.probability, 4), band.name,
                                    f"findings-{finding.label}-evidence-{index + 1}"))

    def differential(self, lead: Finding, band: Band, model_labels: list[str]) -> bool:
        """One impression sentence listing what the graph says the lead finding suggests, leaving out
        what other model outputs already state. False when there is nothing to list."""
        node = self.node(lead.label)
        if node is None:
            return False
        already_stated = {n.key for label in model_labels if (n := self.node(label)) is not None}
        items = [c.label for c in self.graph.differential(node.key) if c.key not in already_stated]
        items = items[: self.templates.differential["max_items"]]
        if not items:
            return False
        listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        self.add(ReportSentence(IMPRESSION, self.templates.differential["text"].format(items=listed), node.iri,
                                lead.label, round(lead.probability, 4), band.name, "impression-differential"))
        return True


def _fill(template: str, finding: Finding, node: Concept | None, graph: KnowledgeGraph) -> str:
    """Fill a template; without a zone the location words are simply left out."""
    zone = graph.zone(finding.zone) if finding.zone else None
    zone_name = zone.label if zone is not None else (finding.zone or "")
    name = node.label if node is not None else finding.display_name.lower()
    text = template.format(where=f"in the {zone_name}" if zone_name else "", Where=zone_name, name=name, Name=name)
    text = " ".join(text.split()).replace(" .", ".").replace(" ,", ",")
    return _capitalise(text)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def report_as_dict(report: DraftReport) -> dict:
    """JSON-ready view of a draft report with each sentence's provenance (for --json outputs and hosts)."""
    return {
        "findings": report.section_text(FINDINGS),
        "impression": report.section_text(IMPRESSION),
        "sentences": [{"id": s.sentence_id, "section": s.section, "text": s.text, "kg_node": s.kg_node,
                       "source_label": s.source_label, "probability": s.probability, "band": s.band}
                      for s in report.sentences],
    }
