"""The objects sent back to PACS (clinical SR, labelled overlay capture), the worklist priority and the
configuration file: made from a real read of a real chest DICOM and checked with dciodvfy and dsrdump."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pacs_support import CHEST_DICOM

from radassist.cli import main as cli_main
from radassist.errors import InputRefused
from radassist.imaging.windowing import apply_window
from radassist.io import read_image
from radassist.pacs.config import load_config, parse_peer_address
from radassist.pacs.results import RESEARCH_LABEL, clinical_sr, overlay_capture, presentation_state
from radassist.pacs.worklist import AIStatus, Worklist, ai_priority
from radassist.pipeline.read import ReadOptions, read_radiograph
from radassist.results import Finding


@pytest.fixture(scope="module")
def chest_read(shared_data):
    path = shared_data / CHEST_DICOM
    image = read_image(path)
    result = read_radiograph(image, ReadOptions(radiomics=False, report=False))
    return pydicom.dcmread(path), image, result


def _dciodvfy(path: Path) -> str:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return run.stdout + run.stderr


def test_clinical_sr_is_in_the_original_study_and_passes_dciodvfy(chest_read, tmp_path):
    original, _, result = chest_read
    sr = clinical_sr(original, result)
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    report = _dciodvfy(path)
    assert not [line for line in report.splitlines() if line.startswith("Error")], report

    assert sr.StudyInstanceUID == original.StudyInstanceUID
    assert (sr.PatientID, str(sr.PatientName), sr.PatientSex) == \
        (original.PatientID, str(original.PatientName), original.PatientSex)
    assert sr.SOPInstanceUID != original.SOPInstanceUID and sr.SeriesInstanceUID != original.SeriesInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.SeriesInstanceUID == original.SeriesInstanceUID
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "UNVERIFIED"
    assert sr.PreliminaryFlag == "PRELIMINARY"  # nobody signed it
    assert RESEARCH_LABEL in sr.SeriesDescription

    # the same SR again (retry, restart): same UIDs, so PACS files it once
    assert clinical_sr(original, result).SOPInstanceUID == sr.SOPInstanceUID

    if shutil.which("dsrdump"):
        dump = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True, timeout=60).stdout
        # every model output (the card's labels, in order) with its calibrated probability
        assert re.findall(r'"Tracking Identifier"\)="AI (\w+)"', dump) == [f.label for f in result.findings]
        probabilities = [float(v) for v in re.findall(r'"AI calibrated probability"\)="([0-9.eE+-]+)"', dump)]
        assert probabilities == pytest.approx([f.probability for f in result.findings], abs=1e-6)
        for finding in (f for f in result.findings if f.positive and f.zone):
            side, level, _ = finding.zone.split()
            assert f'"{level.capitalize()} zone of lung"' in dump and f'"{side.capitalize()}"' in dump


def test_overlay_capture_is_labelled_research_use_and_passes_dciodvfy(chest_read, tmp_path):
    original, image, result = chest_read
    priority = ai_priority(result.findings)
    window = image.default_window()
    capture = overlay_capture(original, apply_window(image.pixels, window.center, window.width),
                              result.saliency[priority.label], result.finding(priority.label), result)
    path = tmp_path / "overlay.dcm"
    capture.save_as(path, enforce_file_format=True)
    report = _dciodvfy(path)
    assert not [line for line in report.splitlines() if line.startswith("Error")], report

    stored = pydicom.dcmread(path)
    assert stored.StudyInstanceUID == original.StudyInstanceUID and stored.PatientID == original.PatientID
    long_name = replace(result.finding(priority.label), display_name="A finding with a very long display name " * 3)
    long_capture = overlay_capture(original, np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32),
                                   long_name, result)
    assert len(long_capture.SeriesDescription.encode("utf-8")) <= 64  # a LO value, "—" is 3 bytes
    assert stored.SeriesDescription.startswith(RESEARCH_LABEL) and stored.BurnedInAnnotation == "YES"
    assert stored.PhotometricInterpretation == "RGB"
    pixels = stored.pixel_array
    # the burned-in caption: yellow text on black in the top-left corner
    corner = pixels[: pixels.shape[0] // 20, : pixels.shape[1] // 2]
    assert ((corner[..., 0] > 200) & (corner[..., 1] > 200) & (corner[..., 2] < 80)).sum() > 50
    # the overlay: coloured (non-grey) pixels where the saliency is high
    coloured = np.abs(pixels[..., 0].astype(int) - pixels[..., 2].astype(int)) > 30
    assert coloured.mean() > 0.01


def test_presentation_state_circles_the_positive_findings_and_passes_dciodvfy(chest_read, tmp_path):
    original, _, result = chest_read
    state = presentation_state(original, result)
    path = tmp_path / "gsps.dcm"
    state.save_as(path, enforce_file_format=True)
    report = _dciodvfy(path)
    assert not [line for line in report.splitlines() if line.startswith("Error")], report

    stored = pydicom.dcmread(path)
    assert stored.StudyInstanceUID == original.StudyInstanceUID and stored.Modality == "PR"
    assert stored.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID == \
        original.SOPInstanceUID
    annotation = stored.GraphicAnnotationSequence[0]
    positive = [f for f in result.findings if f.positive and f.peak_rc]
    centres = [tuple(g.GraphicData[:2]) for g in annotation.GraphicObjectSequence]
    assert centres == [(f.peak_rc[1] + 0.5, f.peak_rc[0] + 0.5) for f in positive]  # (column, row) of each peak
    texts = [t.UnformattedTextValue for t in annotation.TextObjectSequence]
    assert texts[-1].startswith(RESEARCH_LABEL)
    assert texts[:-1] == [f"{f.display_name} {f.probability:.2f}" for f in positive]

    negative = [replace(f, positive=False) for f in result.findings]
    assert presentation_state(original, replace(result, findings=negative)) is None


def _finding(label: str, probability: float, threshold: float = 0.5, conditional_on: str | None = None) -> Finding:
    return Finding(label=label, display_name=label, probability=probability, threshold=threshold,
                   positive=probability >= threshold, conditional_on=conditional_on)


def test_priority_uses_abnormal_when_the_model_has_it_else_the_top_level_findings(chest_read):
    _, _, result = chest_read
    priority = ai_priority(result.findings)
    top_level = [f for f in result.findings if not f.conditional_on]
    expected = result.finding("abnormal") or max(top_level, key=lambda f: f.probability)
    assert (priority.label, priority.score, priority.flagged) == (expected.label, expected.probability,
                                                                   expected.positive)

    with_abnormal = [_finding("opacity", 0.9), _finding("abnormal", 0.3), _finding("viral_pattern", 0.99, 0.5,
                                                                                   "pneumonia")]
    assert ai_priority(with_abnormal).label == "abnormal" and not ai_priority(with_abnormal).flagged
    assert ai_priority(with_abnormal).lead_finding == "opacity"  # the specific finding shown beside it
    without = [_finding("pneumonia", 0.2), _finding("opacity", 0.6), _finding("viral_pattern", 0.99, 0.5, "pneumonia")]
    assert ai_priority(without).label == "opacity"  # a conditional label never drives priority
    assert ai_priority(without).lead_finding == "opacity"
    assert ai_priority([_finding("pneumonia", 0.2)]).lead_finding == ""  # nothing at or above its threshold
    assert ai_priority([]) is None


def test_worklist_orders_flagged_then_by_priority(tmp_path):
    from radassist.pacs.worklist import Priority

    worklist = Worklist(tmp_path / "worklist.sqlite")
    for uid, priority in (("1.1", Priority(0.4, "opacity", False)), ("1.2", Priority(0.7, "opacity", True)),
                          ("1.3", None), ("1.4", Priority(0.9, "opacity", True))):
        worklist.add_received(sop_instance_uid=uid, study_instance_uid="2." + uid, series_instance_uid="3." + uid,
                              sop_class_uid="1.2.840.10008.5.1.4.1.1.7", calling_ae="X", spool_path=tmp_path / uid)
        if priority:
            worklist.set_read(uid, status=AIStatus.READ, priority=priority)
    assert [e.sop_instance_uid for e in worklist.entries()] == ["1.4", "1.2", "1.1", "1.3"]
    assert [e.sop_instance_uid for e in worklist.pending()] == ["1.3"]


def test_configuration_file(tmp_path):
    path = tmp_path / "pacs.toml"
    path.write_text("""
[local]
ae_title = "RADASSIST"
port = 11112
allow = ["ORTHANC"]

[results]
to = "orthanc-web"
overlay = false

[[peer]]
name = "orthanc"
ae_title = "ORTHANC"
host = "127.0.0.1"
port = 4242

[[dicomweb]]
name = "orthanc-web"
url = "http://127.0.0.1:8042/dicom-web/"
""")
    config = load_config(path)
    assert config.allow == ("ORTHANC",) and config.peer("orthanc").port == 4242
    assert config.results.dicomweb.url == "http://127.0.0.1:8042/dicom-web" and config.results.peer is None
    assert not config.results.overlay
    path.write_text('[local]\nae_title = "WAY_TOO_LONG_FOR_AN_AE_TITLE"\n')
    with pytest.raises(InputRefused, match="AE title"):
        load_config(path)
    with pytest.raises(InputRefused, match="AET@HOST:PORT"):
        parse_peer_address("ORTHANC:4242")


@pytest.mark.parametrize("arguments, reason", [
    (["--port", "70000"], "outside 1-65535"),
    (["--results-to", "nowhere"], "AET@HOST:PORT"),
    (["--config", "/nonexistent/pacs.toml"], "does not exist"),
])
def test_listen_refuses_bad_options_with_one_line(arguments, reason, capsys, data_dir):
    assert cli_main(["listen", *arguments]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("radassist: error: ") and reason in err[0]


def test_signed_reading_sr_is_final_with_the_reader_and_passes_dciodvfy(chest_read, tmp_path):
    from radassist.feedback.state import FindingState, SessionState
    from radassist.pacs.results import signed_reading_sr

    original, _, result = chest_read
    state = SessionState(session_id="s1", reader_id="r1", model_id=result.model_id, model_sha256=result.model_sha256,
                         signed_text="FINDINGS: x\n\nIMPRESSION: y\n", signed_utc="2026-12-06T00:00:00+00:00")
    for finding in result.findings:
        state.findings[finding.label] = FindingState(finding.label, finding.display_name, finding.probability,
                                                     finding.threshold, finding.positive,
                                                     decision="present" if finding.positive else "absent")
    sr = signed_reading_sr(original, state, "Reader^Test")
    path = tmp_path / "reading.dcm"
    sr.save_as(path, enforce_file_format=True)
    report = _dciodvfy(path)
    assert not [line for line in report.splitlines() if line.startswith("Error")], report
    assert sr.PreliminaryFlag == "FINAL" and sr.StudyInstanceUID == original.StudyInstanceUID
    assert sr.SOPInstanceUID != clinical_sr(original, result).SOPInstanceUID  # its own object, not the pre-read
    if shutil.which("dsrdump"):
        dump = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True, timeout=60).stdout
        assert '"Person Observer Name")="Reader^Test' in dump
        assert dump.count("Tracking Identifier\")=\"Reader ") == len(result.findings)


@pytest.fixture()
def root_logging():
    """`listen` configures logging to the (captured) stderr; put the root logger back afterwards."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_listen_refuses_a_port_in_use_with_one_line(capsys, data_dir, tmp_path, root_logging):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code = cli_main(["listen", "--port", str(busy.getsockname()[1]), "--spool", str(tmp_path / "spool")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cannot listen on 127.0.0.1:" in err[0]
