"""Reduced-resolution first picture of JPEG 2000 DICOMs."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless

from radassist.io import read_image
from radassist.io.preview import read_preview


@pytest.fixture(scope="module")
def j2k_chest(tmp_path_factory, repo_root):
    """The bundled NIH chest DX re-encoded as 12-bit JPEG 2000 lossless (as a DX modality might send it)."""
    ds = pydicom.dcmread(repo_root / "resources/samples/nih_cxr14_no_finding.dcm")
    pixels = (ds.pixel_array.astype(np.uint16) * 16)  # 8 -> 12 bits
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.compress(JPEG2000Lossless, pixels)
    path = tmp_path_factory.mktemp("j2k") / "chest_j2k.dcm"
    ds.save_as(path)
    return path


def test_preview_is_a_faithful_reduced_copy_of_the_full_decode(j2k_chest):
    preview = read_preview(j2k_chest, max_side=256)
    full = read_image(j2k_chest).pixels
    assert preview.scale == 4 and preview.image.pixels.shape == (256, 256)
    assert preview.image.meta.rows == 1024  # metadata describes the full image
    reduced = full.reshape(256, 4, 256, 4).mean(axis=(1, 3))
    assert np.corrcoef(reduced.ravel(), preview.image.pixels.ravel())[0, 1] > 0.99
    assert abs(float(preview.image.pixels.max()) - float(full.max())) < 0.05 * float(full.max())


def test_no_preview_for_uncompressed_or_non_dicom(repo_root):
    assert read_preview(repo_root / "resources/samples/nih_cxr14_no_finding.dcm") is None
    assert read_preview(repo_root / "resources/samples/pediatric_normal.png") is None
