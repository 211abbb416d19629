"""radassist.io.read_image and `radassist info` on real DICOM files (tests/data/dicom, from ../shared/data/dicom)."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radassist.errors import InputRefused
from radassist.io import read_image

DICOM_DIR = Path(__file__).parent / "data" / "dicom"
INDEX = list(csv.DictReader(open(DICOM_DIR / "index.csv", encoding="utf-8")))
DECODABLE = [row for row in INDEX if row["pydicom_3_0_2_decode"].startswith("ok")]
REFUSED = [row for row in INDEX if not row["pydicom_3_0_2_decode"].startswith("ok")]
CR_MONO1 = DICOM_DIR / "dcmfx_test_assets/fo-dicom/CR-MONO1-10-chest.dcm"
CHEST_DX = DICOM_DIR / "nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"


def radassist_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radassist.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_index_lists_twelve_decodable_and_two_refused_files():
    assert len(DECODABLE) == 12
    assert {Path(r["file"]).name for r in REFUSED} == {"genFile.dcm", "monochrome_jpeg_xl_12bit.dcm"}


@pytest.mark.parametrize("row", DECODABLE, ids=lambda r: Path(r["file"]).name)
def test_every_decodable_file_decodes_with_the_declared_shape(row):
    image = read_image(DICOM_DIR / row["file"])
    rows, columns = int(row["rows"]), int(row["columns"])
    assert image.pixels.shape == (rows, columns)
    assert image.pixels.dtype == np.float32
    assert np.isfinite(image.pixels).all()
    assert image.pixels.max() > image.pixels.min()  # not blank
    assert image.meta.modality == (row["modality"] or None)


@pytest.mark.parametrize("row", [r for r in DECODABLE if r["photometric"] != "RGB"],
                         ids=lambda r: Path(r["file"]).name)
def test_orientation_and_values_match_an_independent_decode(row):
    """Same pixels as pydicom's own first frame (after rescale): no transposes, flips or shifts."""
    path = DICOM_DIR / row["file"]
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    reference = pydicom.pixels.apply_modality_lut(pydicom.pixels.pixel_array(ds, index=0), ds)
    reference = np.asarray(reference, dtype=np.float64)
    ours = read_image(path).pixels.astype(np.float64)
    correlation = np.corrcoef(ours.ravel(), reference.ravel())[0, 1]
    expected_sign = -1.0 if row["photometric"] == "MONOCHROME1" else 1.0
    assert correlation * expected_sign > 0.999


def test_monochrome1_is_inverted_relative_to_stored_values_and_window_follows():
    ds = pydicom.dcmread(CR_MONO1, force=True)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    stored = ds.pixel_array.astype(np.float32)
    image = read_image(CR_MONO1)
    pivot = stored.min() + stored.max()
    np.testing.assert_allclose(image.pixels, pivot - stored)
    # the stored bright (dense) bone is dark in MONOCHROME1 stored values: after inversion it is bright
    assert image.meta.photometric == "MONOCHROME1"
    (preset,) = image.meta.window_presets
    assert preset.width == 1024 and preset.center == pytest.approx(pivot - 550)


def test_acr_nema_file_without_preamble_reads_as_implicit_little_endian():
    assert CR_MONO1.read_bytes()[128:132] != b"DICM"
    image = read_image(CR_MONO1)
    assert image.meta.transfer_syntax_uid == "1.2.840.10008.1.2"
    assert image.meta.body_part == "CHEST"
    assert image.meta.view_position == "PA"


def test_multiframe_gives_first_frame_with_a_warning():
    image = read_image(DICOM_DIR / "dcmfx_test_assets/fo-dicom/HasFragmentSequence.dcm")
    assert image.shape == (512, 512)
    assert any("first frame" in w for w in image.meta.warnings)


def test_rgb_is_converted_to_grey():
    image = read_image(DICOM_DIR / "dcmfx_test_assets/pydicom/test_files/ExplVR_BigEnd.dcm")
    assert image.pixels.ndim == 2 and image.shape == (60, 80)
    assert any("greyscale" in w for w in image.meta.warnings)


def test_source_files_are_never_modified(tmp_path):
    before = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
              for p in DICOM_DIR.rglob("*.dcm")}
    for path in before:
        try:
            read_image(path)
        except InputRefused:
            pass
    after = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in before}
    assert before == after


def test_png_reads_through_simpleitk(repo_root):
    image = read_image(repo_root / "resources/samples/pediatric_normal.png")
    assert image.meta.file_format == "PNG" and image.pixels.dtype == np.float32
    assert 0 <= image.pixels.min() < image.pixels.max() <= 255


def test_nifti_and_mha_read(tmp_path):
    import SimpleITK as sitk

    array = (np.arange(40 * 30, dtype=np.int16).reshape(40, 30) % 251)
    for name in ("x.nii.gz", "x.mha"):
        sitk_image = sitk.GetImageFromArray(array)
        sitk_image.SetSpacing((0.2, 0.3))
        sitk.WriteImage(sitk_image, str(tmp_path / name))
        image = read_image(tmp_path / name)
        np.testing.assert_array_equal(image.pixels, array.astype(np.float32))
        assert image.meta.pixel_spacing_mm == pytest.approx((0.3, 0.2))


def test_absurd_dimensions_are_refused_before_decoding(tmp_path):
    ds = pydicom.dcmread(CHEST_DX)
    ds.Rows = 60000
    ds.Columns = 60000
    bomb = tmp_path / "bomb.dcm"
    ds.save_as(bomb)
    with pytest.raises(InputRefused, match="larger than any radiograph"):
        read_image(bomb)


@pytest.mark.parametrize("row", DECODABLE, ids=lambda r: Path(r["file"]).name)
def test_info_cli_exits_0_with_json(row):
    result = radassist_cli("info", str(DICOM_DIR / row["file"]))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["rows"] == int(row["rows"]) and info["columns"] == int(row["columns"])
    for key in ("modality", "photometric", "bits_stored", "pixel_spacing", "view_position", "body_part",
                "transfer_syntax", "window_presets", "pixel_min", "pixel_max"):
        assert key in info
    assert result.stderr == ""


@pytest.mark.parametrize("path,reason", [
    ("dcmfx_test_assets/fo-dicom/genFile.dcm", "corrupt"),
    ("dcmfx_test_assets/other/monochrome_jpeg_xl_12bit.dcm", "JPEG XL"),
    ("does/not/exist.dcm", "does not exist"),
])
def test_info_cli_refuses_with_exit_2_and_one_line(path, reason):
    result = radassist_cli("info", str(DICOM_DIR / path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("radassist: error: ") and reason in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_info_cli_refuses_a_text_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    result = radassist_cli("info", str(text))
    assert result.returncode == 2 and "not an image" in result.stderr
