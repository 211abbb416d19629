"""Draft report on constructed reads: hedging bands, provenance, templates as data, the round trip draft report ->
report NLP -> the findings it was generated from (every model label, every band), and the rules of report v2:
anatomy parts, "not assessed", the normal-statement gate, one location per finding, no radiomics in FINDINGS,
measurements, age and spread filters of the differential, conditional outputs. Real films: test_report_real_films.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from radassist.errors import InputRefused
from radassist.findings.film import age_group_of, domain_of, spread_of
from radassist.findings.knowledge import Spread, load_knowledge_graph
from radassist.findings.nlp import label_report
from radassist.findings.report import (
    band_of,
    default_template_path,
    draft_report,
    load_templates,
    logit_offset,
)
from radassist.image import ImageMetadata
from radassist.inference.engine import card_path_for
from radassist.results import (
    AgeGroup,
    AnatomySection,
    DomainVerdict,
    EvidenceStatement,
    Finding,
    Measurement,
    MeasurementKind,
    QAVerdict,
    ReadResult,
)

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


# The v2 classifier's labels as the lead announced them (constructed here, so the rules are tested before it lands).
V2_THRESHOLDS = {"abnormal": 0.3, "opacity": 0.37, "effusion": 0.4, "cardiomegaly": 0.45, "nodule_mass": 0.35,
                 "pneumothorax": 0.3, "atelectasis": 0.4, "edema": 0.4, "pneumonia": 0.42, "viral_pattern": 0.55}
INSIDE = {"embedding_distance": 1.0, "embedding_threshold": 2.5}  # QA measured the film inside the training data
OUTSIDE = {"embedding_distance": 3.1, "embedding_threshold": 2.5}


def read_result(probabilities: dict[str, float], zone: str | None = "right lower zone", *,
                thresholds: dict[str, float] = THRESHOLDS, checks: dict | None = None, age: float | None = None,
                view: str | None = None, zones: dict[str, str] | None = None) -> ReadResult:
    findings = []
    for label, p in probabilities.items():
        t = thresholds[label]
        where = (zones or {}).get(label, zone)
        findings.append(Finding(label=label, display_name=label.replace("_", " "), probability=p, threshold=t,
                                positive=p >= t, zone=where, peak_rc=(300, 200) if where else None,
                                evidence=[EVIDENCE] if p >= t else [], conditional_on=CONDITIONS.get(label)))
    meta = ImageMetadata("study.png", "PNG", 512, 512, patient_age_years=age, view_position=view)
    return ReadResult(meta=meta, qa=QAVerdict(True, "frontal chest radiograph", dict(checks or {})),
                      model_id="test-model", findings=findings)


def all_negative(thresholds: dict[str, float] = THRESHOLDS) -> dict[str, float]:
    return {name: probability_in_band("negative", t) for name, t in thresholds.items()}


def findings_lines(text: str) -> dict[str, str]:
    """'Lungs: ...' lines of the FINDINGS block of DraftReport.text(), by part name."""
    block = text.split("\n\nIMPRESSION:")[0].split("\n")[1:]
    return dict(line.split(": ", 1) for line in block)


def scenario(label: str, band: str, thresholds: dict[str, float] = THRESHOLDS) -> dict[str, float]:
    """`label` in `band`, every other label negative; a conditional label gets its condition positive."""
    probabilities = all_negative(thresholds)
    probabilities[label] = probability_in_band(band, thresholds[label])
    if label in CONDITIONS:
        probabilities[CONDITIONS[label]] = probability_in_band("definite", thresholds[CONDITIONS[label]])
    return probabilities


def expected_labels(probabilities: dict[str, float], thresholds: dict[str, float]) -> dict[str, str]:
    graph = load_knowledge_graph()
    expected = {}
    for label, p in probabilities.items():
        condition = CONDITIONS.get(label)
        if condition and probabilities[condition] < thresholds[condition]:
            continue  # not reported at all
        if graph.node_for_model_label(label).is_a("StudyVerdict"):
            continue  # the study-level output names no finding
        finding = Finding(label, label, p, thresholds[label], p >= thresholds[label])
        expected[label] = band_of(finding).nlp_label
    return expected


@pytest.mark.parametrize("zone", ["right lower zone", "left upper zone", None])
@pytest.mark.parametrize("band", BANDS)
@pytest.mark.parametrize("label", sorted(THRESHOLDS) + [f"v2:{name}" for name in sorted(V2_THRESHOLDS)])
def test_round_trip_every_label_and_band(label, band, zone):
    thresholds = V2_THRESHOLDS if label.startswith("v2:") else THRESHOLDS
    label = label.removeprefix("v2:")
    probabilities = scenario(label, band, thresholds)
    report = draft_report(read_result(probabilities, zone, thresholds=thresholds, checks=INSIDE))
    read_back = label_report(report.text())
    graph = load_knowledge_graph()
    for name, expected in expected_labels(probabilities, thresholds).items():
        node = graph.node_for_model_label(name).key
        assert read_back.labels.get(node) == expected, (name, band, report.text())
    spoken = [s for s in report.sentences if s.source_label == label and s.band == band]
    quiet = band in ("negative", "indeterminate") and graph.node_for_model_label(label).is_a("StudyVerdict")
    assert spoken or quiet, f"no sentence speaks for {label} in band {band}"


def test_normal_study_gives_pertinent_negatives_and_a_normal_statement_scoped_to_what_was_covered():
    report = draft_report(read_result(all_negative(), checks=INSIDE))
    text = report.text()
    lines = findings_lines(text)
    assert lines["Lungs"] == "No radiographic evidence of pneumonia. No focal airspace opacity."
    for part in ("Pleura", "Heart and mediastinum", "Lines and tubes", "Bones"):
        assert lines[part] == "Not assessed by RadAssist."
    impression = report.section_text("IMPRESSION")
    assert impression.startswith("No acute abnormality of the lungs on the findings RadAssist assesses.")
    assert "Pleura, heart and mediastinum, lines and tubes and bones not assessed by RadAssist." in impression
    assert "viral" not in text.lower()  # viral_pattern is conditional on pneumonia, which is negative
    labels = label_report(text).labels
    assert labels["Normal"] == "present"
    assert labels["Opacity"] == labels["Pneumonia"] == "absent"
    assert "SupportDevice" not in labels  # "Lines and tubes: Not assessed" names no device
    assert {s.band for s in report.sentences if s.source_label} == {"negative"}


@pytest.mark.parametrize("checks, notice", [
    ({}, "Outside validated use: no domain check was made."),  # nothing says the film is inside
    (OUTSIDE, "Outside validated use: the image is unlike the films the model was trained on "
              "(embedding distance 3.10 > 2.50)."),
])
def test_no_normal_statement_outside_the_validated_domain(checks, notice):
    report = draft_report(read_result(all_negative(), checks=checks))
    impression = report.section_text("IMPRESSION")
    assert impression.startswith(f"Not called normal. {notice}")
    assert not [s for s in report.sentences if s.kg_node.endswith("#Normal")]
    # the same film inside the domain (the embedding within the card's limit) gets the normal statement
    inside = draft_report(read_result(all_negative(), checks=INSIDE))
    assert inside.section_text("IMPRESSION").startswith("No acute abnormality")


def test_qa_domain_verdict_decides_the_normal_statement_and_gives_the_age_group():
    """QA's typed domain verdict (patient age against the card's range, the chest check's age estimate) wins over
    the embedding fallback."""
    outside = read_result(all_negative(), checks=INSIDE)
    outside.qa.domain = DomainVerdict(inside=False, notice="Outside validated use: patient age 0.3 years is below "
                                      "the validated range (from 1 years).", age_group=AgeGroup.PEDIATRIC)
    report = draft_report(outside)
    assert report.section_text("IMPRESSION").startswith("Not called normal. Outside validated use: patient age 0.3")
    assert age_group_of(outside) is AgeGroup.PEDIATRIC
    inside = read_result(all_negative(), checks=OUTSIDE)
    inside.qa.domain = DomainVerdict(inside=True, age_group=AgeGroup.ADULT)
    assert draft_report(inside).section_text("IMPRESSION").startswith("No acute abnormality")
    assert age_group_of(inside) is AgeGroup.ADULT


def test_no_normal_statement_when_a_covered_finding_is_not_negative():
    probabilities = all_negative()
    probabilities["opacity"] = probability_in_band("indeterminate", THRESHOLDS["opacity"])
    impression = draft_report(read_result(probabilities, checks=INSIDE)).section_text("IMPRESSION")
    assert "No acute abnormality" not in impression
    assert impression.startswith("No definite abnormality on the findings RadAssist assesses.")


def test_v2_labels_fill_pleura_and_heart_and_leave_lines_and_bones_not_assessed():
    probabilities = scenario("effusion", "definite", V2_THRESHOLDS)
    report = draft_report(read_result(probabilities, "left lower zone", thresholds=V2_THRESHOLDS, checks=INSIDE))
    lines = findings_lines(report.text())
    assert list(lines) == [part.value for part in AnatomySection]  # every part once, in report order
    assert lines["Pleura"] == "There is a left pleural effusion. No pneumothorax."
    assert lines["Heart and mediastinum"] == "The heart is not enlarged."
    assert lines["Lines and tubes"] == lines["Bones"] == "Not assessed by RadAssist."
    assert "No nodule or mass." in lines["Lungs"] and "No pulmonary edema." in lines["Lungs"]
    impression = report.section_text("IMPRESSION")
    assert impression.startswith("Left pleural effusion.")
    assert impression.endswith("Lines and tubes and bones not assessed by RadAssist.")
    assert "abnormal in a way" not in impression  # a named finding says more than the study-level output
    for sentence in report.sentences:
        assert (sentence.anatomy is None) == (sentence.section == "IMPRESSION")


def test_the_study_level_output_speaks_only_when_nothing_specific_is_positive():
    probabilities = scenario("abnormal", "probable", V2_THRESHOLDS)
    report = draft_report(read_result(probabilities, thresholds=V2_THRESHOLDS, checks=INSIDE))
    assert not [s for s in report.sentences if s.section == "FINDINGS" and s.source_label == "abnormal"]
    impression = report.section_text("IMPRESSION")
    assert "likely abnormal in a way RadAssist does not name" in impression
    assert "No acute abnormality" not in impression
    assert next(f for f in report_result_findings(probabilities) if f.label == "abnormal").zone is None


def report_result_findings(probabilities: dict[str, float]) -> list[Finding]:
    result = read_result(probabilities, thresholds=V2_THRESHOLDS, checks=INSIDE)
    draft_report(result)
    return result.findings


@pytest.mark.parametrize("view, ratio, heart, impression", [
    ("PA", 0.58, "The heart is enlarged (cardiothoracic ratio 0.58).", "Cardiomegaly."),
    ("AP", 0.58, "Cardiothoracic ratio 0.58 on an AP film, which magnifies the heart: cardiomegaly cannot be excluded.",
     None),
    (None, 0.58, "Cardiothoracic ratio 0.58; the view is not recorded and an AP film magnifies the heart: "
                 "cardiomegaly cannot be excluded.", None),
    ("PA", 0.44, "Heart size is normal (cardiothoracic ratio 0.44).", None),
])
def test_a_cardiothoracic_ratio_writes_the_heart_sentence_and_replaces_the_model_output(view, ratio, heart, impression):
    for thresholds in (THRESHOLDS, V2_THRESHOLDS):
        probabilities = all_negative(thresholds)
        if "cardiomegaly" in thresholds:  # the model disagrees with the measurement: the measurement speaks
            probabilities["cardiomegaly"] = probability_in_band("definite" if ratio < 0.5 else "negative",
                                                                thresholds["cardiomegaly"])
        result = read_result(probabilities, thresholds=thresholds, checks=INSIDE, view=view)
        result.measurements[MeasurementKind.CARDIOTHORACIC_RATIO] = Measurement(MeasurementKind.CARDIOTHORACIC_RATIO,
                                                                                ratio)
        report = draft_report(result)
        assert findings_lines(report.text())["Heart and mediastinum"] == heart
        assert not [s for s in report.sentences if s.source_label == "cardiomegaly"]
        sentence = next(s for s in report.sentences if s.sentence_id == "findings-cardiothoracic_ratio")
        assert sentence.kg_node.endswith("#Cardiomegaly") and sentence.band == "measured"
        impression_text = report.section_text("IMPRESSION")
        if impression:
            assert impression_text.startswith(impression)
        normal = impression_text.startswith("No acute abnormality of the lungs")
        assert normal == (ratio < 0.5), impression_text
        expected = ("present" if view == "PA" else "uncertain") if ratio >= 0.5 else "absent"
        assert label_report(report.text()).labels["Cardiomegaly"] == expected


def test_radiomics_evidence_stays_evidence_and_findings_carry_no_percentages():
    result = read_result(scenario("opacity", "definite"), checks=INSIDE)
    report = draft_report(result)
    findings = report.section_text("FINDINGS")
    assert "%" not in findings and "density" not in findings and "evidence" not in " ".join(
        s.sentence_id for s in report.sentences)
    assert result.finding("opacity").evidence == [EVIDENCE]  # still there for the evidence panel and read --json


def test_one_location_per_finding_shared_by_table_findings_and_impression():
    probabilities = scenario("opacity", "definite")
    probabilities["pneumonia"] = probability_in_band("definite", THRESHOLDS["pneumonia"])
    zones = {"opacity": "right lower zone", "pneumonia": "left upper zone", "viral_pattern": "left mid zone"}
    result = read_result(probabilities, checks=INSIDE, zones=zones)
    report = draft_report(result)
    text = report.text()
    assert "left" not in text  # the pneumonia is where the opacity is: one side in the whole report
    assert "Findings consistent with pneumonia in the right lower zone." in text
    assert result.finding("pneumonia").zone == result.finding("opacity").zone == "right lower zone"  # the table


def test_pleural_findings_name_the_side_only_and_heart_findings_no_zone():
    probabilities = scenario("pneumothorax", "probable", V2_THRESHOLDS)
    probabilities["cardiomegaly"] = probability_in_band("definite", V2_THRESHOLDS["cardiomegaly"])
    result = read_result(probabilities, "right upper zone", thresholds=V2_THRESHOLDS, checks=INSIDE)
    report = draft_report(result)
    assert "Probable right pneumothorax." in findings_lines(report.text())["Pleura"]
    assert findings_lines(report.text())["Heart and mediastinum"] == "The heart is enlarged."
    assert result.finding("cardiomegaly").zone is None and result.finding("pneumothorax").zone == "right upper zone"


def test_conditional_finding_silent_and_not_flagged_when_its_condition_is_negative():
    probabilities = all_negative()
    probabilities["viral_pattern"] = probability_in_band("definite", THRESHOLDS["viral_pattern"])
    result = read_result(probabilities, checks=INSIDE)
    report = draft_report(result)
    assert "viral" not in report.text().lower()
    assert not [s for s in report.sentences if s.source_label == "viral_pattern"]
    assert result.finding("viral_pattern").positive and result.flagged() == []
    assert label_report(report.text()).labels.get("ViralPattern") in (None, "absent")


def differential(report) -> str:
    return next((s.text for s in report.sentences if s.sentence_id == "impression-differential"), "")


@pytest.mark.parametrize("age, expect_oncologic, expect_pediatric", [
    (67.0, True, False), (0.4, False, True), (9.0, False, True), (None, False, False)])
def test_differential_is_filtered_by_age_group(age, expect_oncologic, expect_pediatric):
    nodule = draft_report(read_result(scenario("nodule_mass", "definite", V2_THRESHOLDS), thresholds=V2_THRESHOLDS,
                                      checks=INSIDE, age=age))
    oncologic = ("neoplasm" in differential(nodule)) or ("metastatic" in differential(nodule))
    assert oncologic == expect_oncologic, differential(nodule)
    assert "granuloma" in differential(nodule)
    viral = draft_report(read_result(scenario("viral_pattern", "definite"), checks=INSIDE, age=age))
    assert ("bronchiolitis" in differential(viral)) == expect_pediatric, differential(viral)
    assert "viral pneumonia" in differential(viral)


def test_age_group_from_dicom_age():
    assert age_group_of(read_result(all_negative(), age=17.9)) is AgeGroup.PEDIATRIC
    assert age_group_of(read_result(all_negative(), age=18.0)) is AgeGroup.ADULT
    assert age_group_of(read_result(all_negative())) is None
    assert domain_of(QAVerdict(False, "not a chest radiograph", dict(INSIDE))).inside is False


def lungs_and_saliency(result: ReadResult, label: str, *, right: bool, left: bool) -> None:
    """A 64x64 lung mask (right lung on the image's left) and a saliency map over one or both lungs."""
    mask = np.zeros((64, 64), np.uint8)
    mask[8:56, 6:28], mask[8:56, 36:58] = 1, 2
    heat = np.zeros((64, 64), np.float32)
    if right:
        heat[30:50, 8:26] = 1.0
    if left:
        heat[30:50, 38:56] = 1.0
    result.lung_mask = mask
    result.saliency = {f.label: heat for f in result.findings}


@pytest.mark.parametrize("band", ["indeterminate", "possible", "probable"])
def test_a_one_lung_opacity_gets_no_hedged_viral_pattern_and_no_viral_differential(band):
    probabilities = scenario("viral_pattern", band)
    probabilities["opacity"] = probability_in_band("definite", THRESHOLDS["opacity"])
    focal = read_result(probabilities, checks=INSIDE)
    lungs_and_saliency(focal, "opacity", right=True, left=False)
    assert spread_of(focal, "opacity") is Spread.FOCAL
    report = draft_report(focal)
    hedged = band in ("indeterminate", "possible")
    assert ("viral pattern" in report.text().lower()) == (not hedged), report.text()
    assert "viral pneumonia" not in differential(report) and "COVID-19" not in differential(report)
    both = read_result(probabilities, checks=INSIDE)
    lungs_and_saliency(both, "opacity", right=True, left=True)
    assert spread_of(both, "opacity") is Spread.BILATERAL
    assert "viral pattern" in draft_report(both).text().lower()


def test_every_card_label_has_a_graph_node_and_an_anatomy_part():
    """Whatever classifier is installed (v1 or v2), each of its labels is spoken for by the graph."""
    graph = load_knowledge_graph()
    card = json.loads(card_path_for("classifier").read_text(encoding="utf-8"))
    for label in card["labels"]:
        node = graph.node_for_model_label(label["id"])
        assert graph.report_section(node.key) or node.is_a("StudyVerdict"), label["id"]


def test_every_sentence_carries_provenance_and_a_stable_id():
    graph = load_knowledge_graph()
    probabilities = scenario("viral_pattern", "definite")
    report = draft_report(read_result(probabilities, checks=INSIDE))
    ids = [s.sentence_id for s in report.sentences]
    assert len(ids) == len(set(ids)) and all(ids)
    for sentence in report.sentences:
        assert sentence.kg_node and graph.has(sentence.kg_node)
        if sentence.band in ("not_assessed", "notice"):
            assert sentence.source_label is None  # no model output produced it
            continue
        assert sentence.source_label in THRESHOLDS
        assert 0.0 <= sentence.probability <= 1.0
        assert sentence.band in BANDS
    # same read, slightly different numbers in the same bands: same sentence ids
    nudged = {k: min(0.999, v * 1.01) for k, v in probabilities.items()}
    assert [s.sentence_id for s in draft_report(read_result(nudged, checks=INSIDE)).sentences] == ids


def test_differential_comes_from_the_graph_and_skips_what_the_model_states():
    report = draft_report(read_result(scenario("viral_pattern", "definite"), checks=INSIDE, age=40))
    sentence = next(s for s in report.sentences if s.sentence_id == "impression-differential")
    assert "COVID-19 pneumonia" in sentence.text and "viral pneumonia" in sentence.text
    assert sentence.kg_node.endswith("#ViralPattern") and sentence.source_label == "viral_pattern"
    opacity_only = draft_report(read_result(scenario("opacity", "definite"), checks=INSIDE))
    sentence = next(s for s in opacity_only.sentences if s.sentence_id == "impression-differential")
    assert "atelectasis" in sentence.text and " pneumonia" not in sentence.text


def test_zone_names_come_from_the_graph_and_unknown_zones_are_kept():
    report = draft_report(read_result(scenario("opacity", "definite"), zone="right middle zone"))
    assert "in the right mid zone" in report.text()
    report = draft_report(read_result(scenario("opacity", "definite"), zone="azygos region"))
    assert "in the azygos region" in report.text()


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
    data["not_assessed"] = "Outside the scope of RadAssist."
    custom = tmp_path / "site_templates.json"
    custom.write_text(json.dumps(data))
    report = draft_report(read_result(scenario("opacity", "definite")), templates=load_templates(custom))
    assert "Dense airspace opacity in the right lower zone." in report.text()
    assert findings_lines(report.text())["Bones"] == "Outside the scope of RadAssist."


def test_a_read_without_findings_is_refused():
    empty = ReadResult(meta=ImageMetadata("x.png", "PNG", 8, 8), qa=QAVerdict(False, "not a chest radiograph"))
    with pytest.raises(InputRefused, match="not a chest radiograph"):
        draft_report(empty)


def test_an_explained_finding_is_not_repeated_in_the_impression():
    probabilities = scenario("opacity", "definite")
    probabilities["pneumonia"] = probability_in_band("definite", THRESHOLDS["pneumonia"])
    report = draft_report(read_result(probabilities, checks=INSIDE))
    impression = report.section_text("IMPRESSION")
    assert impression.startswith("Findings consistent with pneumonia in the right lower zone.")
    assert "airspace opacity" not in impression  # said once, by the diagnosis that explains it
    assert "There is airspace opacity in the right lower zone." in report.section_text("FINDINGS")
    probabilities["pneumonia"] = probability_in_band("possible", THRESHOLDS["pneumonia"])
    impression = draft_report(read_result(probabilities, checks=INSIDE)).section_text("IMPRESSION")
    assert "Findings may represent pneumonia." in impression  # names no place: the opacity keeps its own
    assert "Right lower zone airspace opacity." in impression


def test_findings_of_a_film_outside_the_validated_domain_carry_the_notice():
    report = draft_report(read_result(scenario("opacity", "definite"), checks=OUTSIDE))
    notice = next(s for s in report.sentences if s.sentence_id == "impression-outside-domain-notice")
    assert "embedding distance 3.10 > 2.50" in notice.text and notice.source_label is None and notice.band == "notice"
    inside = draft_report(read_result(scenario("opacity", "definite"), checks=INSIDE))
    assert not [s for s in inside.sentences if s.band == "notice"]
