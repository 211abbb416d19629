"""The Slicer module's edits reach the feedback store through the core's FeedbackSession: a real SQLite
store, read back both raw (sqlite3) and through the core's replay."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from radassist.errors import InputRefused
from radassist.feedback import FeedbackSession
from radassist.io import ImageMetadata, Radiograph
from radassist.pipeline.result import DraftReport, Finding, QAVerdict, ReadResult, ReportSentence


def _radiograph(patient_name=None) -> Radiograph:
    pixels = np.random.default_rng(7).normal(100.0, 20.0, (48, 40)).astype(np.float32)
    meta = ImageMetadata(source_path="/nowhere/cxr.dcm", file_format="DICOM", rows=48, columns=40,
                         pixel_spacing_mm=(0.2, 0.2), sop_instance_uid="1.2.826.0.1.3680043.8.498.1",
                         patient_name=patient_name)
    return Radiograph(pixels=pixels, meta=meta)


def _result(radiograph: Radiograph) -> ReadResult:
    return ReadResult(
        meta=radiograph.meta, qa=QAVerdict(True, "frontal chest radiograph"), model_id="m1", model_sha256="ab" * 32,
        findings=[Finding("opacity", "Lung opacity", 0.82, 0.5, True, zone="right lower zone"),
                  Finding("pneumonia", "Pneumonia", 0.31, 0.5, False)],
        saliency={"opacity": np.full(radiograph.shape, 0.5, np.float32)},
        lung_mask=np.zeros(radiograph.shape, np.uint8),
        report=DraftReport([ReportSentence("FINDINGS", "Opacity right lower zone.", None, "opacity", 0.82,
                                           "likely", "s0")]),
    )


@pytest.fixture()
def read_logic(radassist_module, scene, data_dir, tmp_path):
    def make(patient_name=None):
        logic = radassist_module.RadAssistModuleLogic(feedbackStore=tmp_path / "feedback.sqlite")
        radiograph = _radiograph(patient_name)
        logic.showRadiograph(radiograph)
        logic.showReadResult(_result(radiograph))
        return logic
    return make


def _rows(store):
    with sqlite3.connect(store) as connection:
        return [(kind, json.loads(payload))
                for kind, payload in connection.execute("SELECT type, payload FROM events ORDER BY seq")]


def test_decisions_and_signed_report_are_stored_in_order(read_logic, tmp_path):
    logic = read_logic()
    logic.startFeedbackSession()
    logic.recordDecision("opacity", "accept")
    logic.recordDecision("pneumonia", "uncertain")
    logic.recordDecision("pneumonia", "reject")
    logic.signReport("Patchy opacity in the right lower zone. ", "Right lower lobe pneumonia.")
    session_id = logic.startFeedbackSession().session_id
    logic.closeFeedbackSession()

    rows = _rows(tmp_path / "feedback.sqlite")
    assert [kind for kind, _ in rows] == ["study_opened", "ai_result_shown", "finding_accepted",
                                          "finding_uncertain", "finding_rejected", "report_signed"]
    assert rows[1][1]["model_id"] == "m1" and [f["label"] for f in rows[1][1]["findings"]] == ["opacity", "pneumonia"]
    assert rows[-1][1]["text"] == ("FINDINGS: Patchy opacity in the right lower zone.\n\n"
                                   "IMPRESSION: Right lower lobe pneumonia.\n")
    state = FeedbackSession.resume(session_id, tmp_path / "feedback.sqlite").state()
    assert state.findings["opacity"].decision == "present"
    assert state.findings["pneumonia"].decision == "absent"  # the later decision wins
    assert state.signed_text is not None


def test_first_decision_opens_the_session_itself(read_logic, tmp_path):
    logic = read_logic()
    logic.recordDecision("opacity", "reject")
    logic.closeFeedbackSession()
    assert [kind for kind, _ in _rows(tmp_path / "feedback.sqlite")] == [
        "study_opened", "ai_result_shown", "finding_rejected"]


def test_bad_edits_are_refused_and_nothing_follows_a_signature(read_logic, tmp_path):
    logic = read_logic()
    with pytest.raises(ValueError):
        logic.recordDecision("opacity", "maybe")
    with pytest.raises(InputRefused):
        logic.recordDecision("pneumothorax", "accept")  # not a finding on screen
    logic.signReport("Clear lungs.", "Normal.")
    with pytest.raises(InputRefused):
        logic.recordDecision("opacity", "accept")
    logic.closeFeedbackSession()
    assert [kind for kind, _ in _rows(tmp_path / "feedback.sqlite")][-1] == "report_signed"


def test_patient_name_in_the_signed_text_is_not_stored(read_logic, tmp_path):
    logic = read_logic(patient_name="Doe^Johnathan")
    logic.signReport("Johnathan Doe: lungs clear.", "Normal.")
    logic.closeFeedbackSession()
    kind, payload = _rows(tmp_path / "feedback.sqlite")[-1]
    assert kind == "report_signed" and "lungs clear" in payload["text"]
    stored = (tmp_path / "feedback.sqlite").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("feedback.sqlite-wal"))
    assert b"Johnathan" not in stored


def test_a_new_radiograph_starts_a_new_session(read_logic, radassist_module, tmp_path):
    logic = read_logic()
    logic.recordDecision("opacity", "accept")
    first = logic.startFeedbackSession().session_id
    radiograph = _radiograph()
    logic.showRadiograph(radiograph)
    logic.showReadResult(_result(radiograph))
    assert logic.startFeedbackSession().session_id != first
    logic.closeFeedbackSession()
