"""One entry point: a path in, a Radiograph out, or InputRefused with a reason a radiologist understands."""

from __future__ import annotations

import os
from pathlib import Path

from radassist.errors import InputRefused
from radassist.io.image import Radiograph

_HEAD_BYTES = 512


def read_image(path: str | os.PathLike[str]) -> Radiograph:
    """Read a DICOM or raster image (read-only) into float32 presentation-space pixels + metadata."""
    from radassist.io.dicom import looks_like_dicom, quiet_decoders, read_dicom
    from radassist.io.raster import raster_format, read_raster

    path = Path(path)
    if not path.exists():
        raise InputRefused(f"{path} does not exist")
    if path.is_dir():
        raise InputRefused(f"{path} is a folder, not an image file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:
        raise InputRefused(f"{path.name} cannot be opened ({exc.strerror or exc})") from None
    if not head:
        raise InputRefused(f"{path.name} is empty")
    if looks_like_dicom(head):
        return read_dicom(path)
    file_format = raster_format(path, head)
    if file_format:
        with quiet_decoders():  # libpng/libtiff print "libpng error: ..." straight to fd 2 (found by fuzzing)
            return read_raster(path, file_format)
    if path.suffix.lower() in (".dcm", ".dicom", "") or path.name.upper() == "DICOMDIR":
        return read_dicom(path)  # a preamble-less file whose first element is not group 0008
    raise InputRefused(f"{path.name} is not an image RadAssist can read (DICOM, PNG, JPEG, TIFF, NIfTI, MHA)")
