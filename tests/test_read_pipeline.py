"""`radassist read` end to end on the shipped models: findings, saliency, radiomics, QA, no network."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from radassist.errors import InputRefused
from radassist.pipeline.read import ReadOptions, read_radiograph

DICOM_DIR = Path(__file__).parent / "data" / "dicom"
CHEST = {
    "nih_dx": DICOM_DIR / "nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm",
    "cr_mono1": DICOM_DIR / "dcmfx_test_assets/fo-dicom/CR-MONO1-10-chest.dcm",
}
NON_CHEST = {
    "CT": "dcmfx_test_assets/fo-dicom/D_CLUNIE_CT1_RLE_FRAGS.dcm",
    "MR": "dcmfx_test_assets/fo-dicom/GH064.dcm",
    "MR small": "dcmfx_test_assets/pydicom/test_files/MR_small_jpeg_ls_lossless.dcm",
    "NM": "dcmfx_test_assets/pydicom/test_files/JPEG2000.dcm",
    "NM extended": "dcmfx_test_assets/pydicom/test_files/JPGExtended.dcm",
    "US": "dcmfx_test_assets/pydicom/test_files/ExplVR_BigEnd.dcm",
    "XA": "dcmfx_test_assets/fo-dicom/HasFragmentSequence.dcm",
    "MG": "dcmfx_test_assets/fo-dicom/OutOfBoundsOverlay.dcm",
    "dental CR": "dcmfx_test_assets/fo-dicom/CR-ModalitySequenceLUT.dcm",
    "abdominal scout": "nhsx_nccid_test_data/sample.dcm",
}


def radassist_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radassist.cli", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("name", sorted(CHEST))
def test_chest_dicoms_are_read_with_findings_saliency_and_radiomics(name):
    result = read_radiograph(CHEST[name])
    assert result.qa.accepted, result.qa.reason
    labels = {f.label for f in result.findings}
    assert {"abnormal", "pneumonia", "opacity", "effusion"} <= labels
    assert "viral_pattern" not in labels  # learnt from children only: not shown on these adult films
    for finding in result.findings:
        assert 0.0 <= finding.probability <= 1.0 and 0.0 < finding.threshold < 1.0
        saliency = result.saliency[finding.label]
        assert saliency.shape == (result.meta.rows, result.meta.columns)
        assert 0.0 <= saliency.min() and saliency.max() <= 1.0
        if finding.peak_rc is not None:
            # a zone when the peak lies in or near a lung field (a whole-film label's peak may sit on the margin)
            assert finding.zone is None or finding.zone.endswith("zone")
            # restricted to the lungs (plus a small margin): the peak lies in or next to a lung field
            assert result.lung_mask is not None
    assert set(result.radiomics_table) >= {"right_lung", "left_lung"}
    assert result.report is not None and result.report.section_text("IMPRESSION")
    for stage in ("load", "lungs", "preprocess", "inference", "saliency", "radiomics", "report"):
        assert stage in result.timings_ms
    assert len(result.model_sha256) == 64 and result.provider == "CPUExecutionProvider"


def test_saliency_of_lung_findings_stays_on_the_lung_fields():
    from radassist.explain.saliency import lung_envelope
    from radassist.inference.engine import load_model

    result = read_radiograph(CHEST["nih_dx"])
    envelope = lung_envelope(result.lung_mask)  # the lung fields and the pleural margin the card restricts to
    restricted = {label.id for label in load_model("classifier").card.labels if label.restrict_to_lungs}
    for label, saliency in result.saliency.items():
        if label in restricted and saliency.sum() > 0:
            assert saliency[envelope].sum() / saliency.sum() > 0.95, label


@pytest.mark.parametrize("kind", sorted(NON_CHEST))
def test_non_chest_images_are_refused(kind):
    with pytest.raises(InputRefused, match="not read"):
        read_radiograph(DICOM_DIR / NON_CHEST[kind])


def test_sample_pngs_pass_qa(repo_root):
    for path in sorted((repo_root / "resources/samples").glob("*.png")):
        result = read_radiograph(path, ReadOptions(radiomics=False, report=False))
        assert result.qa.accepted, (path.name, result.qa.reason)


def test_read_cli_json_and_overlays(tmp_path):
    out = radassist_cli("read", str(CHEST["nih_dx"]), "--json", "--saliency-out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["qa"]["accepted"] and payload["model"]["sha256"]
    assert payload["report"]["impression"]
    assert all(Path(p).exists() for p in payload["saliency_png"])
    assert len(payload["saliency_png"]) == len(payload["findings"])  # one overlay per card label
    assert payload["qa"]["validated_use"]["inside"] in (True, False)
    from PIL import Image

    overlay = np.asarray(Image.open(payload["saliency_png"][0]))
    assert overlay.shape == (1024, 1024, 3)


def test_read_cli_refuses_a_ct_with_exit_2_and_one_line():
    out = radassist_cli("read", str(DICOM_DIR / NON_CHEST["CT"]))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("radassist: error: ") and "CT" in out.stderr


def test_occlusion_option_gives_maps_in_image_space():
    result = read_radiograph(CHEST["cr_mono1"], ReadOptions(occlusion=True, radiomics=False, report=False))
    assert all(s.shape == (440, 440) for s in result.saliency.values())
    assert any(s.max() > 0 for s in result.saliency.values())


def test_read_opens_no_socket(monkeypatch):
    """Patch socket creation to fail: a read must still complete (nothing goes to the network)."""
    def no_network(*args, **kwargs):
        raise AssertionError("radassist tried to open a network socket")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    result = read_radiograph(CHEST["cr_mono1"])
    assert result.findings and result.report is not None


def test_findings_arrive_early_as_a_copy_the_rest_of_the_read_does_not_change():
    early = []
    result = read_radiograph(CHEST["nih_dx"], on_findings=early.append)
    assert len(early) == 1
    first = early[0]
    assert [f.label for f in first.findings] == [f.label for f in result.findings]
    assert [f.probability for f in first.findings] == [f.probability for f in result.findings]
    assert set(first.saliency) == set(result.saliency) and first.qa.accepted
    assert first.report is None and first.radiomics_table == {}
    assert set(first.timings_ms) < set(result.timings_ms) and "radiomics" not in first.timings_ms
    assert result.report is not None and any(f.evidence for f in result.findings if f.positive)
    assert not any(f.evidence for f in first.findings)  # the full read's evidence did not leak into the copy


def test_prepare_read_loads_the_models_pyradiomics_and_the_knowledge_graph():
    code = ("import json, sys\n"
            "from radassist.pipeline.read import prepare_read\n"
            "from radassist.inference import engine\n"
            "prepare_read()\n"
            "print(json.dumps({'tasks': sorted(s.card.data['task'] for s in engine._cache.values()),\n"
            "                  'modules': [m in sys.modules for m in ('radiomics.featureextractor',\n"
            "                                                         'radassist.findings.report')]}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout)
    assert loaded == {"tasks": ["chest_check", "classification", "lung_segmentation"], "modules": [True, True]}
