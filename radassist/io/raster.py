"""PNG / JPEG / TIFF / BMP / NIfTI / MetaImage -> Radiograph through SimpleITK.

The file's structure (raster_checks) and its header (ReadImageInformation: size, slices or pages, samples and
sample type) are checked first, so a cut-short file or a hostile size is refused before anything is decoded.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from radassist.errors import InputRefused
from radassist.image import ImageMetadata, Radiograph, luminance
from radassist.io.decoder_output import captured_decoder_output
from radassist.io.limits import check_decoded_bytes, check_dimensions
from radassist.io.raster_checks import check_structure
from radassist.outputs import shown

FORMAT_BY_SUFFIX = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
    ".nii": "NIfTI", ".nii.gz": "NIfTI", ".mha": "MetaImage", ".mhd": "MetaImage", ".nrrd": "NRRD",
}
# What libjpeg and libpng print when image data is missing or damaged (libjpeg's JWRN_* messages, libpng's
# IDAT/zlib complaints): a file whose decoder says this is refused. Other warnings are harmless and common
# ("iCCP: known incorrect sRGB profile", libtiff's unknown private tags) and are only kept off the terminal.
DAMAGE_WARNINGS = {
    "JPEG": re.compile(r"Premature end of JPEG|Corrupt JPEG data|Invalid SOS|Inconsistent progression|"
                       r"Huffman|Bogus", re.IGNORECASE),
    "PNG": re.compile(r"image data|compressed data|IDAT|CRC error|incorrect header check|invalid (distance|"
                      r"code|block|stored|window)|decompression|truncat", re.IGNORECASE),
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
    """Structure and size are checked from the file's bytes and header; only then are the pixels decoded."""
    import SimpleITK as sitk

    check_structure(path, file_format)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    with captured_decoder_output():
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            raise InputRefused(f"{shown(path.name)} is not a readable {file_format} image") from None
    size = [int(side) for side in reader.GetSize()]
    components = reader.GetNumberOfComponents()
    columns, rows = size[0], size[1] if len(size) > 1 else 1
    depth = size[2] if len(size) > 2 else 1
    check_dimensions(rows, columns, depth, components if components in (1, 3, 4) else 99)
    check_decoded_bytes(shown(path.name), tuple(size), components, _bytes_per_component(reader.GetPixelID()))
    with captured_decoder_output() as decoder:
        try:
            image = reader.Execute()
        except RuntimeError:
            raise InputRefused(f"the pixel data of {shown(path.name)} is corrupt or truncated ({file_format})") from None
    damage = DAMAGE_WARNINGS.get(file_format)
    warning = next((line for line in decoder.lines() if damage and damage.search(line)), None)
    if warning:
        raise InputRefused(f"the pixel data of {shown(path.name)} is damaged: the {file_format} decoder reports "
                           f"\"{warning}\"; refusing to read it")
    array = sitk.GetArrayViewFromImage(image)  # (z, y, x[, c]) or (y, x[, c]); a view, no copy
    meta = ImageMetadata(source_path=str(path), file_format=file_format, rows=rows, columns=columns)
    if depth > 1:
        array = array[0]
        meta.warnings.append(f"3D image ({depth} slices): only the first slice is used")
        meta.number_of_frames = depth
    if array.ndim == 3:
        array = luminance(array)
        meta.warnings.append("colour image converted to greyscale")
    spacing = image.GetSpacing()
    if file_format in ("NIfTI", "MetaImage", "NRRD") and len(spacing) >= 2 and spacing[0] != 1.0:
        meta.pixel_spacing_mm = (float(spacing[1]), float(spacing[0]))
        meta.pixel_spacing_source = "image header"
    meta.photometric = "MONOCHROME2"
    meta.bits_stored = int(np.dtype(image_dtype(image)).itemsize * 8)
    pixels = np.array(array, dtype=np.float32, order="C")  # a copy: `image` is released on return
    del array, image
    if pixels.shape != (rows, columns):
        raise InputRefused(f"{shown(path.name)} decoded to an unexpected shape {pixels.shape}")
    if not np.all(np.isfinite(pixels)):
        raise InputRefused(f"the pixel data of {shown(path.name)} contains invalid (non-finite) values")
    return Radiograph(pixels=pixels, meta=meta)


def _bytes_per_component(pixel_id: int) -> int:
    """Bytes of one sample of a SimpleITK pixel type (8 for a type not listed: the cautious guess)."""
    import SimpleITK as sitk

    sizes = {"Int8": 1, "UInt8": 1, "Int16": 2, "UInt16": 2, "Int32": 4, "UInt32": 4, "Float32": 4,
             "Int64": 8, "UInt64": 8, "Float64": 8}
    by_id = {getattr(sitk, f"sitk{prefix}{name}"): size for name, size in sizes.items()
             for prefix in ("", "Vector")}
    return by_id.get(pixel_id, 8)


def image_dtype(image) -> np.dtype:
    import SimpleITK as sitk

    return np.dtype(sitk.GetArrayViewFromImage(image).dtype)
