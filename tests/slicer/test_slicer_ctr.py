"""The cardiothoracic ratio in Slicer: two markups lines on a REAL MRML scene (slicer-core), placed where the
core measured them; dragging an end is a correction recorded in the core's Reading (real SQLite store),
replayed when the image is opened again, and refused once the report is signed."""

from __future__ import annotations

import numpy as np
import pytest

from radassist.feedback import EventStore
from radassist.feedback.reading import Reading
from radassist.image import ImageMetadata, Radiograph
from radassist.imaging.ctr import AP_NOTE, CardiothoracicRatio, HorizontalLine
from radassist.results import DraftReport, Finding, MeasurementKind, QAVerdict, ReadResult, ReportSentence

CTR = MeasurementKind.CARDIOTHORACIC_RATIO
SPACING = (0.25, 0.2)  # row, column mm: unequal, so a swapped axis shows


def _radiograph() -> Radiograph:
    pixels = np.random.default_rng(3).normal(100.0, 20.0, (60, 50)).astype(np.float32)
    meta = ImageMetadata(source_path="/nowhere/cxr.dcm", file_format="DICOM", rows=60, columns=50,
                         pixel_spacing_mm=SPACING, sop_instance_uid="1.2.826.0.1.3680043.8.498.7",
                         view_position="AP")
    return Radiograph(pixels=pixels, meta=meta)


def _result(radiograph: Radiograph) -> ReadResult:
    ctr = CardiothoracicRatio(HorizontalLine(40, 18, 33), HorizontalLine(30, 5, 44), note=AP_NOTE)
    return ReadResult(
        meta=radiograph.meta, qa=QAVerdict(True, "frontal chest radiograph"), model_id="m1", model_sha256="ab" * 32,
        findings=[Finding("cardiomegaly", "Cardiomegaly", 0.3, 0.5, False)],
        lung_mask=np.zeros(radiograph.shape, np.uint8),
        report=DraftReport([ReportSentence("FINDINGS", "Heart size within normal limits.", None, "cardiomegaly",
                                           0.3, "unlikely", "s0")]),
        measurements={CTR: ctr.as_measurement()},
    )


@pytest.fixture()
def ctr_logic(radassist_module, scene, data_dir, tmp_path):
    def make():
        logic = radassist_module.RadAssistModuleLogic(feedbackStore=tmp_path / "feedback.sqlite", readerId="dr-s")
        radiograph = _radiograph()
        logic.showRadiograph(radiograph)
        logic.showReadResult(_result(radiograph))
        logic.startReading()
        logic.showCtr()
        return logic
    return make


def _ends(node) -> list[list[float]]:
    return [list(node.GetNthControlPointPositionWorld(index)) for index in range(node.GetNumberOfControlPoints())]


def _drag(radassist_module, node, index, ras) -> None:
    """What dropping a control point in a slice view does: the point moves, then the end-interaction event."""
    import slicer

    node.SetNthControlPointPositionWorld(index, *ras)
    node.InvokeEvent(slicer.vtkMRMLMarkupsNode.PointEndInteractionEvent)


def test_the_lines_lie_where_the_core_measured_them(radassist_module, ctr_logic, scene):
    logic = ctr_logic()
    heart = scene.GetFirstNodeByName(radassist_module.CTR_LINE_NAMES["heart"])
    thorax = scene.GetFirstNodeByName(radassist_module.CTR_LINE_NAMES["thorax"])
    assert heart is logic.ctrLineNodes["heart"] and thorax is logic.ctrLineNodes["thorax"]
    # the radiograph volume's IJK->RAS (LPS directions): x = -column * column spacing, y = -row * row spacing
    assert np.allclose(_ends(heart), [[-18 * 0.2, -40 * 0.25, 0], [-33 * 0.2, -40 * 0.25, 0]])
    assert np.allclose(_ends(thorax), [[-5 * 0.2, -30 * 0.25, 0], [-44 * 0.2, -30 * 0.25, 0]])
    assert heart.GetDescription() == f"CTR {16 / 40:.2f} ({AP_NOTE})"
    assert not heart.GetLocked()


def test_a_dragged_end_is_a_correction_the_reading_keeps(radassist_module, ctr_logic, scene, tmp_path):
    logic = ctr_logic()
    heart = logic.ctrLineNodes["heart"]
    _drag(radassist_module, heart, 1, [-38 * 0.2, -42 * 0.25, 0.0])  # right end to column 38, row 42

    corrected = logic.reading.corrected_measurement(CTR)
    assert corrected is not None
    assert corrected.points[:2] == ((41.0, 18.0), (41.0, 38.0))  # kept horizontal at the ends' mean row
    assert corrected.value == pytest.approx(21 / 40, abs=1e-4) and corrected.note == AP_NOTE
    redrawn = logic.ctrLineNodes["heart"]
    assert redrawn is heart  # moved in place: the node being dragged is never removed under the pointer
    assert np.allclose(_ends(redrawn), [[-18 * 0.2, -41 * 0.25, 0], [-38 * 0.2, -41 * 0.25, 0]])
    assert redrawn.GetDescription().startswith(f"CTR {21 / 40:.2f}")
    logic.closeReading()

    with EventStore(tmp_path / "feedback.sqlite") as store:
        events = [event.type.value for event in store.events(Reading.open(store, _radiograph(), reader_id="dr-s").session_id)]
    assert events.count("measurement_corrected") == 1

    reopened = ctr_logic()  # the same image again: the lines come back as corrected
    assert np.allclose(_ends(reopened.ctrLineNodes["heart"]), _ends(redrawn))


def test_a_dropped_point_that_changes_nothing_records_nothing(radassist_module, ctr_logic):
    logic = ctr_logic()
    thorax = logic.ctrLineNodes["thorax"]
    _drag(radassist_module, thorax, 0, _ends(thorax)[0])
    assert logic.reading.corrected_measurement(CTR) is None


def test_a_signed_reading_locks_the_lines(radassist_module, ctr_logic):
    logic = ctr_logic()
    logic.signReport("Heart size within normal limits.", "No acute abnormality.", aiDraftUnchanged=True)
    logic.lockCtr(logic.reading.signed)
    heart = logic.ctrLineNodes["heart"]
    assert heart.GetLocked()
    _drag(radassist_module, heart, 1, [-45 * 0.2, -40 * 0.25, 0.0])  # a script can still move a locked point
    assert logic.reading.corrected_measurement(CTR) is None
    assert np.allclose(_ends(logic.ctrLineNodes["heart"])[1], [-33 * 0.2, -40 * 0.25, 0])  # drawn back


def test_no_lines_without_a_measurement(radassist_module, scene, data_dir, tmp_path):
    logic = radassist_module.RadAssistModuleLogic(feedbackStore=tmp_path / "feedback.sqlite", readerId="dr-s")
    radiograph = _radiograph()
    logic.showRadiograph(radiograph)
    result = _result(radiograph)
    result.measurements.clear()
    logic.showReadResult(result)
    logic.startReading()
    assert logic.showCtr() is None and logic.ctrLineNodes == {}
    assert scene.GetFirstNodeByName(radassist_module.CTR_LINE_NAMES["heart"]) is None
