"""Make the 3000x3000 16-bit chest DICOMs the benchmarks use, from real image content.

The NIH chest radiograph bundled in resources/samples is upsampled to 3000x3000 and scaled to 12 bits
(stored in 16), then written uncompressed and as JPEG 2000 lossless, the way a DX modality would send it.
Files are cached in a temporary folder; the source sample is only read.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

SIDE = 3000
SAMPLE = Path(__file__).resolve().parent.parent / "resources" / "samples" / "nih_cxr14_no_finding.dcm"
CACHE = Path(tempfile.gettempdir()) / "radassist_bench"


def large_chest_dicoms() -> dict[str, Path]:
    """{'raw': path, 'j2k': path} of 3000x3000 12-bit chest DX files (made once, then reused)."""
    import pydicom
    from PIL import Image
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

    CACHE.mkdir(exist_ok=True)
    paths = {"raw": CACHE / "chest_3000_raw.dcm", "j2k": CACHE / "chest_3000_j2k.dcm"}
    if all(p.exists() for p in paths.values()):
        return paths
    ds = pydicom.dcmread(SAMPLE)
    small = ds.pixel_array.astype(np.float32)
    big = np.asarray(Image.fromarray(small, mode="F").resize((SIDE, SIDE), Image.Resampling.BICUBIC))
    rng = np.random.default_rng(0)  # detector noise, so the 12-bit values are not a smooth upsample
    pixels = np.clip(big * (4095.0 / 255.0) + rng.normal(0, 6, big.shape), 0, 4095).astype(np.uint16)
    ds.Rows = ds.Columns = SIDE
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.ImagerPixelSpacing = [0.143, 0.143]
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = pixels.tobytes()
    ds.save_as(paths["raw"], enforce_file_format=True)
    ds.compress(JPEG2000Lossless, pixels)
    ds.save_as(paths["j2k"], enforce_file_format=True)
    return paths


if __name__ == "__main__":
    for kind, path in large_chest_dicoms().items():
        print(kind, path, path.stat().st_size // 1024, "KiB")
