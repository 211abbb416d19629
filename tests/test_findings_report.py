"""Draft report: hedging bands, provenance, templates as data, and the round trip
draft report -> report NLP -> the findings it was generated from, for every model label and every band."""

from __future__ import annotations

import json
import math

import pytest

from radassist.errors import InputRefused
from radassist.findings.knowledge import load_knowledge_graph
from radassist.findings.nlp import label_report
from radassist.findings.report import (
    band_of,
    default_template_path,
    draft_report,
    load_templates,
    logit_offset,
)
from radassist.io.image import ImageMetadata
from radassist.pipeline.result import EvidenceStatement, Finding, QAVerdict, ReadResult

# Thresholds of the shape a model card gives (each label has its own operating point).
THRESHOLDS = {"pneumonia": 0.42, "viral_pattern": 0.55, "opacity": 0.37}
CONDITIONS = {"viral_pattern": "pneumonia"}
EVIDENCE = EvidenceStatement(
    text="The highlighted region in the right lung has mean density 18% higher than the left lung.",
    feature="original_firstorder_Mean", region="salient", value=0.59, reference=0.50)
TEMPLATES = load_templates()
BANDS = [b.name for b in TEMPLATES.bands]


def probability_in_band(band_name: str, threshold: float) -> float:
    """A probability in the middle of a band (1 log-odds unit inside the open-ended ones)."""
    index = BANDS.index(band_name)
    upper = TEMPLATES.bands[index].below
    lower = TEMPLATES.bands[index - 1].below if index else None
    if lower is None:
        offset = upper - 1.0
    elif upper is None:
        offset = lower + 1.0
    else:
        offset = (lower + upper) / 2
    logit = math.log(threshold / (1 - threshold)) + offset
    return 1 / (1 + math.exp(-logit))


def read_result(probabilities: dict[str, float], zone: str | None = "right lower zone") -> ReadResult:
    findings = []
    for label, p in probabilities.items():
        t = THRESHOLDS[label]
        findings.append(Finding(label=label, display_name=label.replace("_", " "), probability=p, threshold=t,
                                positive=p >= t, zone=zone, peak_rc=(300, 200) if zone else None,
                                evidence=[EVIDENCE] if p >= t else [], conditional_on=CONDITIONS.get(label)))
    return ReadResult(meta=ImageMetadata("study.png", "PNG", 512, 512), qa=QAVerdict(True, "frontal chest radiograph"),
                      model_id="test-model", findings=findings)


def scenario(label: str, band: str) -> dict[str, float]:
    """`label` in `band`, every other label negative; a conditional label gets its condition positive."""
    probabilities = {name: probability_in_band("negative", t) for name, t in THRESHOLDS.items()}
    probabilities[label] = probability_in_band(band, THRESHOLDS[label])
    if label in CONDITIONS:
        probabilities[CONDITIONS[label]] = probability_in_band("definite", THRESHOLDS[CONDITIONS[label]])
    return probabilities


def expected_labels(probabilities: dict[str, float]) -> dict[str, str]:
    expected = {}
    for label, p in probabilities.items():
        condition = CONDITIONS.get(label)
        if condition and probabilities[condition] < THRESHOLDS[condition]:
            continue  # not reported at all
        finding = Finding(label, label, p, THRESHOLDS[label], p >= THRESHOLDS[label])
        expected[label] = band_of(finding).nlp_label
    return expected


@pytest.mark.parametrize("zone", ["right lower zone", "left upper zone", None])
@pytest.mark.parametrize("band", BANDS)
@pytest.mark.parametrize("label", sorted(THRESHOLDS))
def test_round_trip_every_label_and_band(label, band, zone):
    probabilities = scenario(label, band)
    result = read_result(probabilities, zone)
    report = draft_report(result)
    read_back = label_report(report.text())
    graph = load_knowledge_graph()
    for name, expected in expected_labels(probabilities).items():
        node = graph.node_for_model_label(name).key
        assert read_back.labels.get(node) == expected, (name, band, report.text())
    spoken = [s for s in report.sentences if s.source_label == label and s.band == band]
    assert spoken, f"no sentence speaks for {label} in band {band}"


def test_normal_study_gives_pertinent_negatives_that_read_back_as_absent():
    result = read_result({name: probability_in_band("negative", t) for name, t in THRESHOLDS.items()})
    report = draft_report(result)
    text = report.text()
    assert "The lungs are clear." in text and "No focal airspace opacity." in text
    assert "No radiographic evidence of pneumonia." in text
    assert "viral" not in text.lower()  # viral_pattern is conditional on pneumonia, which is negative
    labels = label_report(text).labels
    assert labels["Normal"] == "present"
    assert labels["Opacity"] == labels["Pneumonia"] == "absent"
    assert {s.band for s in report.sentences if s.source_label} == {"negative"}


def test_every_sentence_carries_provenance_and_a_stable_id():
    graph = load_knowledge_graph()
    probabilities = scenario("viral_pattern", "definite")
    report = draft_report(read_result(probabilities))
    ids = [s.sentence_id for s in report.sentences]
    assert len(ids) == len(set(ids)) and all(ids)
    for sentence in report.sentences:
        assert sentence.kg_node and graph.has(sentence.kg_node)
        if sentence.band == "not_assessed":
            assert sentence.source_label is None  # the one sentence no model output produced
            continue
        assert sentence.source_label in THRESHOLDS
        assert 0.0 <= sentence.probability <= 1.0
        assert sentence.band in BANDS
    # same read, slightly different numbers in the same bands: same sentence ids
    nudged = {k: min(0.999, v * 1.01) for k, v in probabilities.items()}
    assert [s.sentence_id for s in draft_report(read_result(nudged)).sentences] == ids


def test_differential_comes_from_the_graph_and_skips_what_the_model_states():
    report = draft_report(read_result(scenario("viral_pattern", "definite")))
    differential = next(s for s in report.sentences if s.sentence_id == "impression-differential")
    assert "COVID-19 pneumonia" in differential.text and "viral pneumonia" in differential.text
    assert differential.kg_node.endswith("#ViralPattern") and differential.source_label == "viral_pattern"
    opacity_only = draft_report(read_result(scenario("opacity", "definite")))
    differential = next(s for s in opacity_only.sentences if s.sentence_id == "impression-differential")
    assert "atelectasis" in differential.text and " pneumonia" not in differential.text


def test_zone_names_come_from_the_graph_and_unknown_zones_are_kept():
    report = draft_report(read_result(scenario("opacity", "definite"), zone="right middle zone"))
    assert "in the right mid zone" in report.text()
    report = draft_report(read_result(scenario("opacity", "definite"), zone="azygos region"))
    assert "in the azygos region" in report.text()


def test_radiomics_evidence_is_quoted_for_a_positive_finding_only():
    positive = draft_report(read_result(scenario("opacity", "probable")))
    assert any(s.sentence_id == "findings-opacity-evidence-1" and "mean density" in s.text for s in positive.sentences)
    negative = draft_report(read_result(scenario("opacity", "negative")))
    assert not any("evidence" in s.sentence_id for s in negative.sentences)


def test_bands_are_relative_to_the_threshold_and_agree_with_positive():
    for threshold in (0.1, 0.37, 0.5, 0.8):
        for p in [i / 100 for i in range(1, 100)]:
            band = band_of(Finding("x", "x", p, threshold, p >= threshold))
            assert (band.name in ("possible", "probable", "definite")) == (p >= threshold), (p, threshold, band)
    assert logit_offset(0.5, 0.5) == 0.0
    assert band_of(Finding("x", "x", 0.37, 0.37, True)).name == "possible"


def test_templates_are_data_a_site_can_change(tmp_path):
    data = json.loads(default_template_path().read_text(encoding="utf-8"))
    data["labels"]["opacity"]["definite"]["findings"] = "Dense airspace opacity {where}."
    data["not_assessed_note"] = None
    custom = tmp_path / "site_templates.json"
    custom.write_text(json.dumps(data))
    report = draft_report(read_result(scenario("opacity", "definite")), templates=load_templates(custom))
    assert "Dense airspace opacity in the right lower zone." in report.text()
    assert not any(s.band == "not_assessed" for s in report.sentences)


def test_a_read_without_findings_is_refused():
    empty = ReadResult(meta=ImageMetadata("x.png", "PNG", 8, 8), qa=QAVerdict(False, "not a chest radiograph"))
    with pytest.raises(InputRefused, match="not a chest radiograph"):
        draft_report(empty)
