"""The Slicer module is a view of the core's Reading: its decisions, report text and signature reach a
real SQLite store through radassist.feedback.reading, read back both raw (sqlite3) and through the
core's replay; the module's parameter node keeps only the session id."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from radassist.errors import InputRefused
from radassist.feedback import EventStore
from radassist.feedback.reading import Reading
from radassist.feedback.session import SigningRefused
from radassist.image import ImageMetadata, Radiograph
from radassist.results import DraftReport, Finding, QAVerdict, ReadResult, ReportSentence


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
    def make(patient_name=None, reader="dr-slicer"):
        logic = radassist_module.RadAssistModuleLogic(feedbackStore=tmp_path / "feedback.sqlite", readerId=reader)
        radiograph = _radiograph(patient_name)
        logic.showRadiograph(radiograph)
        logic.showReadResult(_result(radiograph))
        return logic
    return make


def _rows(store):
    with sqlite3.connect(store) as connection:
        return [(kind, json.loads(payload))
                for kind, payload in connection.execute("SELECT type, payload FROM events ORDER BY seq")]


def test_agree_disagree_and_signed_report_are_stored_in_order(read_logic, tmp_path):
    logic = read_logic()
    logic.recordDecision("opacity", "agree")  # the AI flagged it: present
    logic.recordDecision("pneumonia", "uncertain")
    logic.recordDecision("pneumonia", "agree")  # the AI did not flag it: absent
    logic.signReport("Patchy opacity in the right lower zone. ", "Right lower lobe pneumonia.")
    session_id = logic.reading.session_id
    logic.closeReading()

    rows = _rows(tmp_path / "feedback.sqlite")
    kinds = [kind for kind, _ in rows]
    assert kinds[:5] == ["study_opened", "ai_result_shown", "finding_accepted", "finding_uncertain",
                         "finding_rejected"]
    assert kinds[-1] == "report_signed" and kinds.count("report_signed") == 1
    assert rows[1][1]["model_id"] == "m1" and [f["label"] for f in rows[1][1]["findings"]] == ["opacity", "pneumonia"]
    assert rows[-1][1]["text"] == ("FINDINGS: Patchy opacity in the right lower zone.\n\n"
                                   "IMPRESSION: Right lower lobe pneumonia.\n")
    assert rows[-1][1]["ai_draft_unchanged"] is False
    with EventStore(tmp_path / "feedback.sqlite") as store:
        state = Reading.open(store, _radiograph(), reader_id="someone-else").state
    assert state.session_id == session_id and state.signed
    assert state.findings["opacity"].decision == "present" and state.findings["pneumonia"].decision == "absent"


def test_parameter_node_keeps_only_the_session_id(read_logic, scene):
    logic = read_logic()
    logic.recordDecision("opacity", "disagree")
    node = logic.parameterNode()
    assert node.GetClassName() == "vtkMRMLScriptedModuleNode"
    assert node.GetParameterNames() == ("ReadingSessionId",)
    assert node.GetParameter("ReadingSessionId") == logic.reading.session_id
    logic.closeReading()


def test_reopening_the_image_shows_the_reading_as_left(read_logic, tmp_path):
    logic = read_logic()
    logic.recordDecision("opacity", "disagree")
    first = logic.reading.session_id
    logic.closeReading()

    again = read_logic()  # Slicer restarted, the same image loaded and read again
    again.startReading()
    assert again.reading.session_id == first
    assert again.reading.decision("opacity") == "absent"
    assert [kind for kind, _ in _rows(tmp_path / "feedback.sqlite")].count("ai_result_shown") == 1
    again.closeReading()


def test_signing_waits_for_flagged_findings_unless_the_draft_is_signed_unchanged(read_logic, tmp_path):
    logic = read_logic()
    assert logic.undecidedAiCalls() == ["Lung opacity"]
    with pytest.raises(SigningRefused, match="Lung opacity"):
        logic.signReport("Clear lungs.", "Normal.")
    logic.signReport("Opacity right lower zone.", "", aiDraftUnchanged=True)
    with pytest.raises(SigningRefused, match="already signed"):
        logic.signReport("Opacity right lower zone.", "")
    with pytest.raises(InputRefused):
        logic.recordDecision("opacity", "agree")
    logic.closeReading()
    kind, payload = _rows(tmp_path / "feedback.sqlite")[-1]
    assert kind == "report_signed" and payload["ai_draft_unchanged"] is True and payload["undecided"] == ["opacity"]


def test_bad_calls_and_a_missing_reader_are_refused(read_logic):
    logic = read_logic()
    with pytest.raises(ValueError):
        logic.recordDecision("opacity", "accept")  # the panel speaks agree/disagree/uncertain
    with pytest.raises(InputRefused):
        logic.recordDecision("pneumothorax", "agree")  # not a finding on screen
    logic.closeReading()
    nobody = read_logic(reader=None)
    with pytest.raises(InputRefused, match="reader"):
        nobody.startReading()


def test_patient_name_in_the_signed_text_is_not_stored(read_logic, tmp_path):
    logic = read_logic(patient_name="Doe^Johnathan")
    logic.recordDecision("opacity", "agree")
    logic.signReport("Johnathan Doe: lungs clear.", "Normal.")
    logic.closeReading()
    kind, payload = _rows(tmp_path / "feedback.sqlite")[-1]
    assert kind == "report_signed" and "lungs clear" in payload["text"]
    stored = (tmp_path / "feedback.sqlite").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("feedback.sqlite-wal"))
    assert b"Johnathan" not in stored


def test_a_new_radiograph_starts_its_own_reading(read_logic, radassist_module, tmp_path):
    logic = read_logic()
    logic.recordDecision("opacity", "agree")
    first = logic.reading.session_id
    other = Radiograph(pixels=np.ones((48, 40), np.float32), meta=ImageMetadata(
        source_path="/nowhere/other.dcm", file_format="DICOM", rows=48, columns=40,
        sop_instance_uid="1.2.826.0.1.3680043.8.498.2"))
    logic.showRadiograph(other)
    logic.showReadResult(_result(other))
    assert logic.startReading().session_id != first
    logic.closeReading()
