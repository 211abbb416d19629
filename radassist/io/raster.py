"""PNG / JPEG / TIFF / BMP / NIfTI / MetaImage -> Radiograph through SimpleITK.

The header is read first (ReadImageInformation) so a hostile size is refused before decoding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radassist.errors import InputRefused
from radassist.io.image import ImageMetadata, Radiograph
from radassist.io.limits import check_dimensions

FORMAT_BY_SUFFIX = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
    ".nii": "NIfTI", ".nii.gz": "NIfTI", ".mha": "MetaImage", ".mhd": "MetaImage", ".nrrd": "NRRD",
}


def raster_format(path: Path, head: bytes) -> str | None:
    """The format by magic bytes first (names lie), then by suffix for header-less formats."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    name = path.name.lower()
    for suffix, fmt in FORMAT_BY_SUFFIX.items():
        if name.endswith(suffix) and fmt in ("NIfTI", "MetaImage", "NRRD"):
            return fmt
    return None


def read_raster(path: Path, file_format: str) -> Radiograph:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputRefused(f"{path.name} is not a readable {file_format} image") from None
    size = list(reader.GetSize())
    components = reader.GetNumberOfComponents()
    columns, rows = int(size[0]), int(size[1]) if len(size) > 1 else 1
    depth = int(size[2]) if len(size) > 2 else 1
    check_dimensions(rows, columns, depth, components if components in (1, 3, 4) else 99)
    try:
        image = reader.Execute()
    except RuntimeError:
        raise InputRefused(f"the pixel data of {path.name} is corrupt or truncated ({file_format})") from None
    array = sitk.GetArrayFromImage(image)  # (z, y, x[, c]) or (y, x[, c])
    meta = ImageMetadata(source_path=str(path), file_format=file_format, rows=rows, columns=columns)
    if depth > 1:
        array = array[0]
        meta.warnings.append(f"3D image ({depth} slices): only the first slice is used")
        meta.number_of_frames = depth
    if array.ndim == 3:
        rgb = array[..., :3].astype(np.float32)
        array = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
        meta.warnings.append("colour image converted to greyscale")
    spacing = image.GetSpacing()
    if file_format in ("NIfTI", "MetaImage", "NRRD") and len(spacing) >= 2 and spacing[0] != 1.0:
        meta.pixel_spacing_mm = (float(spacing[1]), float(spacing[0]))
        meta.pixel_spacing_source = "image header"
    meta.photometric = "MONOCHROME2"
    meta.bits_stored = int(np.dtype(image_dtype(image)).itemsize * 8)
    pixels = np.ascontiguousarray(array, dtype=np.float32)
    if pixels.shape != (rows, columns):
        raise InputRefused(f"{path.name} decoded to an unexpected shape {pixels.shape}")
    if not np.all(np.isfinite(pixels)):
        raise InputRefused(f"the pixel data of {path.name} contains invalid (non-finite) values")
    return Radiograph(pixels=pixels, meta=meta)


def image_dtype(image) -> np.dtype:
    import SimpleITK as sitk

    return np.dtype(sitk.GetArrayViewFromImage(image).dtype)
