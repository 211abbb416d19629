"""Crashes the fuzzer (fuzz/fuzz_reader.py) found, minimised: each must end in a Radiograph or InputRefused.

Before the fixes listed in fuzz/README.md, every file here made `read_image` raise something else (a pydicom,
zlib or Rust-panic exception), print to stderr or put control characters in its refusal (breaking the CLI's
one-line error contract), abort the whole Python process from inside a C++ decoder, or allocate gigabytes for a
file of a few hundred bytes. tests/data/fuzz_regressions/SOURCE.md says how each was found and reduced.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from radassist.errors import InputRefused
from radassist.image import Radiograph
from radassist.io import read_image
from radassist.io.limits import MAX_INFLATED_BYTES

REGRESSIONS = Path(__file__).parent / "data" / "fuzz_regressions"

# file -> words the refusal must contain (the reason a radiologist reads), or None when the image must be read.
EXPECTED = {
    "file_meta_odd_length.dcm": "not a readable DICOM file",
    "file_meta_unknown_vr.dcm": "not a readable DICOM file",
    "deflate_corrupt_stream.dcm": "not a readable DICOM file",
    "rle_segment_overrun.dcm": "pixel data of rle_segment_overrun.dcm is corrupt",
    "rows_odd_length.dcm": "declares an empty size",
    "body_part_unknown_vr.dcm": None,
    "png_ihdr_bad_crc.png": "not a readable PNG image",
    "transfer_syntax_control_chars.dcm": "which RadAssist cannot decode",
    "mha_data_file_nul.mha": r"not a usable path \(it contains a NUL byte\)",
    "deflate_padding_after_stream.dcm": None,
}
# These aborted the interpreter (an uncaught C++ exception in GDCM), crashed it (a GDCM segfault) or made a decoder
# allocate gigabytes, so they are read in a child process with a 2 GiB address-space limit: a regression fails the
# test, not the machine.
EXPECTED_IN_CHILD = {
    "j2k_gdcm_abort.dcm": "pixel data of j2k_gdcm_abort.dcm is corrupt",
    "jpeg_gdcm_abort.dcm": "pixel data of jpeg_gdcm_abort.dcm is corrupt",
    "jpegls_frame_larger_than_header.dcm": "compressed pixel data declares 65535 x 65535 pixels",
    "j2k_frame_larger_than_header.dcm": "compressed pixel data declares 8192 x 8192 pixels",
    "jpegls_frame_width_zero.dcm": "compressed pixel data declares 8 x 0 pixels",
}
CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
from radassist.errors import InputRefused
from radassist.io import read_image
for path in sys.argv[1:]:
    try:
        read_image(path)
        outcome = "read"
    except InputRefused as refusal:
        outcome = "refused: " + str(refusal)
    print(json.dumps([path.rsplit("/", 1)[-1], outcome]), flush=True)
"""


def test_every_regression_file_has_an_expectation():
    on_disk = {p.name for p in REGRESSIONS.iterdir() if p.suffix in (".dcm", ".png", ".mha")}
    assert on_disk == set(EXPECTED) | set(EXPECTED_IN_CHILD)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fuzz_regression_ends_in_image_or_refusal(name, capfd):
    path = REGRESSIONS / name
    expected_reason = EXPECTED[name]
    if expected_reason is None:
        image = read_image(path)
        assert isinstance(image, Radiograph)
        assert image.pixels.dtype == np.float32 and image.pixels.shape == (image.meta.rows, image.meta.columns)
    else:
        with pytest.raises(InputRefused, match=expected_reason) as refusal:
            read_image(path)
        assert str(refusal.value).isprintable(), "the refusal must be one clean line (no CR, NUL, escapes)"
    assert capfd.readouterr().err == "", "the CLI promises ONE error line on stderr: reading must print nothing"


def test_malformed_optional_tag_is_skipped_not_fatal():
    """BodyPartExamined has an unknown VR: the image is still read, only that tag is missing."""
    image = read_image(REGRESSIONS / "body_part_unknown_vr.dcm")
    assert image.meta.body_part is None
    assert image.meta.modality == "DX"
    np.testing.assert_array_equal(image.pixels, np.arange(16, dtype=np.float32).reshape(4, 4))


@pytest.fixture(scope="module")
def child_outcomes() -> tuple[dict[str, str], subprocess.CompletedProcess]:
    """Read every EXPECTED_IN_CHILD file in one child process: name -> "read" or "refused: <reason>"."""
    paths = [str(REGRESSIONS / name) for name in sorted(EXPECTED_IN_CHILD)]
    result = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, timeout=300)
    outcomes = dict(json.loads(line) for line in result.stdout.splitlines())
    return outcomes, result


@pytest.mark.parametrize("name", sorted(EXPECTED_IN_CHILD))
def test_native_crash_or_bomb_is_now_a_quick_refusal(name, child_outcomes):
    outcomes, child = child_outcomes
    assert name in outcomes, f"the child died (exit {child.returncode}) before finishing: {child.stderr[-800:]}"
    assert outcomes[name].startswith("refused: ") and EXPECTED_IN_CHILD[name] in outcomes[name], outcomes[name]
    assert child.stderr == ""


def _deflated_dicom(path: Path, inflated_bytes: int) -> None:
    """A Deflated Explicit VR Little Endian file whose data set inflates to `inflated_bytes` (zeros, a bomb)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, SecondaryCaptureImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    header = DicomBytesIO()
    header.is_little_endian, header.is_implicit_VR = True, False
    write_file_meta_info(header, meta)
    # After a full flush the deflater starts afresh, so one compressed MiB of zeros can be repeated verbatim.
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    mebibyte = deflater.compress(bytes(2**20)) + deflater.flush(zlib.Z_FULL_FLUSH)
    with open(path, "wb") as out:
        out.write(b"\0" * 128 + b"DICM" + header.getvalue())
        out.write(mebibyte * (inflated_bytes // 2**20))
        out.write(zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush())


def test_deflate_bomb_is_refused_without_inflating_it(tmp_path):
    """Found next to the fuzzer's zlib crash: pydicom inflates a deflated data set whole, before any header check."""
    bomb = tmp_path / "bomb.dcm"
    _deflated_dicom(bomb, MAX_INFLATED_BYTES + 2**24)
    assert bomb.stat().st_size < 2**20  # well under 1 MB on disk
    tracemalloc.start()
    try:
        with pytest.raises(InputRefused, match="deflated"):
            read_image(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"reading the bomb allocated {peak / 2**20:.0f} MB"


def test_real_deflated_dicom_still_reads(tmp_path, test_data):
    """The bomb guard must not refuse an honest deflated file: same pixels as the uncompressed original."""
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    original = test_data / "dicom" / "dcmfx_test_assets" / "fo-dicom" / "CR-MONO1-10-chest.dcm"
    ds = pydicom.dcmread(original, force=True)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = "1.2.3.4.5"
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    deflated = tmp_path / "deflated.dcm"
    ds.save_as(deflated, enforce_file_format=True)

    image = read_image(deflated)
    assert image.meta.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    np.testing.assert_array_equal(image.pixels, read_image(original).pixels)
