"""Events -> export -> labels.csv on real chest radiographs, checked by tools no one here wrote.

The AI result is SIMULATED (a ReadResult with chosen probabilities): the classifier is trained by
another part of the project, and this test is about what the feedback loop does with a result, not
about the model. The "radiologist" is simulated from the datasets' own labels: where the simulated AI
is wrong, the reader corrects it, draws a region on pneumonia cases, edits a sentence and signs.
Every DICOM file the export writes must pass dicom3tools' dciodvfy without errors, and DCMTK's dsrdump
must read every SR.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pydicom
import pytest
from PIL import Image

from radassist.cli import main as cli_main
from radassist.feedback import EventStore, FeedbackSession
from radassist.image import Radiograph
from radassist.io import read_image
from radassist.results import DraftReport, Finding, QAVerdict, ReadResult, ReportSentence

LABELS = ("pneumonia", "viral_pattern", "opacity")
NIH_DICOM = "dicom/nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"
CR_DICOM = "dicom/dcmfx_test_assets/fo-dicom/CR-MONO1-10-chest.dcm"


def simulated_result(radiograph: Radiograph, probabilities: dict[str, float], *, threshold: float = 0.5) -> ReadResult:
    """A SIMULATED AI read (no model runs): findings with the given probabilities and a draft report."""
    findings = [Finding(label=label, display_name=label.replace("_", " ").capitalize(), probability=p,
                        threshold=threshold, positive=p >= threshold,
                        conditional_on="pneumonia" if label == "viral_pattern" else None)
                for label, p in probabilities.items()]
    pneumonia = probabilities.get("pneumonia", 0.0) >= threshold
    sentences = [
        ReportSentence("FINDINGS", "Airspace opacity in the right lower zone." if pneumonia else "The lungs are clear.",
                       None, "opacity", probabilities.get("opacity"), "likely", "s-findings"),
        ReportSentence("IMPRESSION", "Likely pneumonia." if pneumonia else "No pneumonia.",
                       None, "pneumonia", probabilities.get("pneumonia"), "likely", "s-impression"),
    ]
    return ReadResult(meta=radiograph.meta, qa=QAVerdict(True, "frontal chest radiograph"), model_id="cxr-sim-0",
                      model_sha256="5" * 64, provider="none (simulated)", findings=findings,
                      report=DraftReport(sentences))


def read_like_a_radiologist(store: EventStore, radiograph: Radiograph, truth: dict[str, int], *,
                            reader_id: str = "reader-one", region: bool = True,
                            report_suffix: str = "") -> str:
    """Record one session: the simulated AI is wrong on purpose where `truth` says so; the reader corrects it."""
    wrong = {label: 1.0 - value for label, value in truth.items()}
    ai = {label: 0.2 + 0.6 * value for label, value in wrong.items()}  # AI says the opposite of the truth
    result = simulated_result(radiograph, ai)
    session = FeedbackSession(store, reader_id=reader_id)
    session.open_study(radiograph)
    session.ai_result_shown(result)
    for label, value in truth.items():
        (session.accept if value else session.reject)(label)
    rows, columns = radiograph.shape
    if region and truth.get("pneumonia"):
        session.draw_region("pneumonia", {"kind": "polygon", "points": [
            [columns * 0.55, rows * 0.5], [columns * 0.85, rows * 0.55], [columns * 0.7, rows * 0.85]]})
    findings = "Right lower lobe consolidation." if truth.get("pneumonia") else "The lungs are clear."
    impression = "Pneumonia." if truth.get("pneumonia") else "No acute cardiopulmonary abnormality."
    state = session.state()
    session.edit_sentence("s-findings", state.sentences["s-findings"].text, findings)
    session.sign(f"FINDINGS: {findings}\n\nIMPRESSION: {impression}{report_suffix}\n")
    session.close()
    return session.session_id


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) dciodvfy reports for one file."""
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    lines = (run.stdout + run.stderr).splitlines()
    errors = [line for line in lines if line.startswith(("Error", "Abort"))]
    warnings = [line for line in lines if line.startswith("Warning")]
    return errors, warnings


def require_dicom_tools() -> None:
    missing = [tool for tool in ("dciodvfy", "dsrdump") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install -y dicom3tools dcmtk; CI installs them)")


def _pediatric_cases(shared_data: Path, per_class: int) -> list[tuple[Path, dict[str, int]]]:
    folder = shared_data / "pediatric_pneumonia"
    with open(folder / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    chosen: list[tuple[Path, dict[str, int]]] = []
    for labels, subtype in (("NORMAL", ""), ("PNEUMONIA", "bacterial"), ("PNEUMONIA", "viral")):
        matching = [r for r in rows if r["labels"] == labels and r["subtype"] == subtype][:per_class]
        for row in matching:
            truth = {"pneumonia": int(labels == "PNEUMONIA"), "opacity": int(labels == "PNEUMONIA")}
            if labels == "PNEUMONIA":
                truth["viral_pattern"] = int(subtype == "viral")
            chosen.append((folder / row["file"], truth))
    return chosen


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """One export of real images shared by the tests below (making it is the slow part)."""
    root = tmp_path_factory.mktemp("feedback_export")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("RADASSIST_DATA_DIR", str(root / "userdata"))
    store_path = root / "feedback.sqlite"
    cases = _pediatric_cases(shared_data, per_class=3)
    cases += [(shared_data / NIH_DICOM, {"pneumonia": 0, "opacity": 0}),
              (shared_data / CR_DICOM, {"pneumonia": 1, "opacity": 1, "viral_pattern": 0})]
    truths: dict[str, dict[str, int]] = {}
    with EventStore(store_path) as store:
        for path, truth in cases:
            radiograph = read_image(path)
            read_like_a_radiologist(store, radiograph, truth)
            truths[path.name] = truth
        # An unsigned (headless) pre-read is not exported: no radiologist label.
        from radassist.feedback import record_read

        unsigned = read_image(cases[0][0])
        record_read(simulated_result(unsigned, {"pneumonia": 0.9}), store_path)
    out = root / "export"
    code = cli_main(["export", "--out", str(out), "--store", str(store_path)])
    yield {"out": out, "store": store_path, "cases": cases, "root": root, "code": code}
    monkeypatch.undo()


def test_export_writes_training_labels_that_match_the_radiologist(exported):
    out = exported["out"]
    assert exported["code"] == 0
    from radassist.training.datasets import read_labels_csv

    records = read_labels_csv(out / "labels.csv")
    assert len(records) == len(exported["cases"])  # one row per image; the unsigned pre-read is not there
    findings = list(csv.DictReader(open(out / "findings.csv", newline="")))
    truths_by_session = {}
    for row in findings:
        truths_by_session.setdefault(row["session_id"], {})[row["label"]] = row
    for record in records:
        assert record.path.is_file()
        assert Image.open(record.path).mode == "L"
        final = {label: row for label, row in truths_by_session[record.row["session_id"]].items()}
        # The simulated AI was wrong on every label; the exported final label is the reader's, not the AI's.
        for label, row in final.items():
            assert row["ai_call"] != row["final"], (label, row)
            assert row["final_source"] == "reader_decision"
        expected = {label: int(row["final"] == "present") for label, row in final.items()
                    if label in ("pneumonia", "opacity")}
        assert {k: record.targets[k] for k in expected} == expected
        if final.get("viral_pattern"):
            assert record.targets.get("viral_pattern") == int(final["viral_pattern"]["final"] == "present")
    patients = {r.row["patient_id"] for r in records}
    assert all(p.startswith("RA") and len(p) == 12 for p in patients)
    assert {r.row["split"] for r in records} <= {"train", "test"}


def test_records_follow_the_schema_and_point_at_real_files(exported):
    out = exported["out"]
    schema = json.loads((out / "schema.json").read_text())
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == len(exported["cases"])
    for record in records:
        jsonschema.validate(record, schema)
        assert (out / record["image"]["png"]).is_file() and (out / record["dicom"]["sr"]).is_file()
        for region in record["regions"]:
            mask = np.asarray(Image.open(out / region["mask"]))
            assert mask.shape == (record["image"]["rows"], record["image"]["columns"])
            assert (mask > 0).sum() == region["pixels"] > 0
        assert record["model"] == {"id": "cxr-sim-0", "sha256": "5" * 64}
        report = (out / record["report"]["text_file"]).read_text()
        assert report.startswith("FINDINGS:") and record["report"]["edited_sentences"] == 1
    with_regions = [r for r in records if r["regions"]]
    assert with_regions and all(r["dicom"]["seg"] for r in with_regions)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sessions_exported"] == len(records) and manifest["source_kinds"] == {"raster": 6 + 3, "DICOM": 2}
    assert "nlp" in manifest["report_nlp"]


def test_report_nlp_reads_the_signed_reports(exported):
    findings = list(csv.DictReader(open(exported["out"] / "findings.csv", newline="")))
    read = [row for row in findings if row["label"] == "pneumonia"]
    agree = sum(row["report_nlp"] == row["final"] for row in read)
    print(f"\nreport NLP agrees with the reader's pneumonia decision on {agree}/{len(read)} signed reports")
    assert agree == len(read)


def test_every_dicom_file_passes_dciodvfy_and_dsrdump_reads_the_sr(exported):
    require_dicom_tools()
    out = exported["out"]
    files = sorted((out / "dicom").rglob("*.dcm"))
    kinds = {"image": 0, "sr": 0, "seg": 0}
    all_warnings: dict[str, int] = {}
    for path in files:
        errors, warnings = dciodvfy(path)
        assert not errors, f"{path.relative_to(out)}: {errors}"
        for warning in warnings:
            if "needed to build DICOMDIR" not in warning:
                all_warnings[warning] = all_warnings.get(warning, 0) + 1
        kind = "sr" if path.name.endswith("-sr.dcm") else "seg" if path.name.endswith("-seg.dcm") else "image"
        kinds[kind] += 1
        if kind == "sr":
            dump = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True, timeout=60)
            assert dump.returncode == 0, dump.stderr
            assert "Imaging Measurement Report" in dump.stdout and "Device Observer Name" in dump.stdout
            assert '"cxr-sim-0"' in dump.stdout
    print(f"\ndciodvfy: {len(files)} files {kinds}, 0 errors; warnings: {json.dumps(all_warnings, indent=1)}")
    assert kinds["image"] == len(exported["cases"]) and kinds["sr"] == len(exported["cases"]) and kinds["seg"] >= 1


def test_sr_and_seg_reference_the_exported_image(exported):
    out = exported["out"]
    for record in (json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()):
        image = pydicom.dcmread(out / record["image"]["dicom"])
        sr = pydicom.dcmread(out / record["dicom"]["sr"])
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == image.SOPInstanceUID
        assert sr.PatientID == image.PatientID == record["patient_id"]
        if record["dicom"]["seg"]:
            seg = pydicom.dcmread(out / record["dicom"]["seg"])
            referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
            assert referenced.ReferencedSOPInstanceUID == image.SOPInstanceUID
            assert seg.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"


def test_export_refuses_a_non_empty_folder_and_a_missing_store(exported, capsys):
    assert cli_main(["export", "--out", str(exported["out"]), "--store", str(exported["store"])]) == 2
    assert "not empty" in capsys.readouterr().err
    missing = exported["root"] / "nowhere.sqlite"
    assert cli_main(["export", "--out", str(exported["root"] / "x"), "--store", str(missing)]) == 2
    assert "no feedback store" in capsys.readouterr().err
    assert cli_main(["export", "--out", str(exported["root"] / "y"), "--store", str(exported["store"]),
                     "--since", "last tuesday"]) == 2


def test_since_keeps_only_later_sessions(exported):
    out = exported["root"] / "since-future"
    assert cli_main(["export", "--out", str(out), "--store", str(exported["store"]), "--since", "2999-01-01"]) == 0
    assert list(csv.DictReader(open(out / "labels.csv"))) == []


def test_moved_images_are_found_with_images_folder_or_reported(tmp_path: Path, data_dir: Path, shared_data: Path):
    (path, truth), = _pediatric_cases(shared_data, per_class=1)[1:2]
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    copy = incoming / path.name
    shutil.copy(path, copy)
    store_path = tmp_path / "feedback.sqlite"
    with EventStore(store_path) as store:
        read_like_a_radiologist(store, read_image(copy), truth)
    moved = tmp_path / "archive" / "2024"
    moved.mkdir(parents=True)
    copy.rename(moved / copy.name)
    assert cli_main(["export", "--out", str(tmp_path / "lost"), "--store", str(store_path)]) == 0
    excluded = json.loads((tmp_path / "lost" / "excluded.json").read_text())
    assert len(excluded) == 1 and "not found" in excluded[0]["reason"]
    assert cli_main(["export", "--out", str(tmp_path / "found"), "--store", str(store_path),
                     "--images", str(tmp_path / "archive")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "found" / "labels.csv")))
    assert len(rows) == 1 and rows[0]["labels"] == "opacity|pneumonia" and rows[0]["subtype"] == "bacterial"
    exported = np.asarray(Image.open(tmp_path / "found" / rows[0]["file"]))
    assert exported.shape == np.asarray(Image.open(path)).shape
