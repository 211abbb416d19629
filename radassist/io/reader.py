"""One entry point: a path in, a Radiograph out, or InputRefused with a reason a radiologist understands.

Order of the checks, cheapest first and none of them decoding: the path must name a regular file of a sane size
(files.regular_file: FIFOs, devices, sockets, folders, symbolic-link loops and unreadable files are refused at
once), its first bytes must say which format it is, and each format's reader checks structure and declared size
against limits.py before its decoder runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from radassist.errors import InputRefused
from radassist.image import Radiograph

_HEAD_BYTES = 512
_DICOM_SUFFIXES = (".dcm", ".dicom", "")


def read_image(path: str | os.PathLike[str]) -> Radiograph:
    """Read a DICOM or raster image (read-only) into float32 presentation-space pixels + metadata."""
    from radassist.io.decoder_output import quiet_decoders
    from radassist.io.dicom import looks_like_dicom, read_dicom
    from radassist.io.files import read_head, regular_file
    from radassist.io.raster import raster_format, read_raster
    from radassist.outputs import shown

    path = Path(path)
    if regular_file(path).st_size == 0:
        raise InputRefused(f"{shown(path.name)} is empty")
    head = read_head(path, _HEAD_BYTES)
    if looks_like_dicom(head):
        return read_dicom(path)
    file_format = raster_format(path, head)
    if file_format:
        with quiet_decoders():  # libpng/libtiff print "libpng error: ..." straight to fd 2 (found by fuzzing)
            return read_raster(path, file_format)
    if path.suffix.lower() in _DICOM_SUFFIXES or path.name.upper() == "DICOMDIR":
        if not any(head[:132]):
            raise InputRefused(f"{shown(path.name)} starts with zero bytes only: it is not a DICOM file")
        return read_dicom(path)  # a preamble-less file whose first element is not group 0008
    raise InputRefused(f"{shown(path.name)} is not an image RadAssist can read "
                       "(DICOM, PNG, JPEG, TIFF, NIfTI, MHA)")
