"""A first picture of a large JPEG 2000 DICOM in a fraction of the full decode time.

JPEG 2000 stores resolution levels: decoding only the coarse ones gives a 1/2^k image far faster than
the full decode (3000x3000 12-bit: ~0.1 s instead of ~1-4 s here). The viewer shows this preview at once
and swaps in `read_image`'s full-resolution result when it arrives. Other syntaxes have no such shortcut:
`read_preview` returns None for them and the caller just waits for the full decode.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radassist.image import Radiograph

JPEG2000_SYNTAXES = {
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",  # JPEG 2000 (lossless only / lossy)
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",  # HTJ2K
}


@dataclass
class Preview:
    image: Radiograph  # pixels at reduced resolution, metadata of the full image
    scale: int  # full-resolution pixels per preview pixel, along each axis


def read_preview(path: str | Path, max_side: int = 512) -> Preview | None:
    """Reduced-resolution decode of a JPEG 2000 DICOM, or None if the file is not one (or cannot be)."""
    import pydicom
    from PIL import Image, UnidentifiedImageError
    from pydicom.encaps import generate_frames
    from pydicom.filereader import read_file_meta_info

    from radassist.io.decoder_output import quiet_decoders
    from radassist.io.dicom import presentation_values, read_metadata
    from radassist.io.files import regular_file

    path = Path(path)
    with quiet_decoders():
        try:
            regular_file(path)  # not a FIFO or a device, not over the file budget
            if str(read_file_meta_info(str(path)).get("TransferSyntaxUID")) not in JPEG2000_SYNTAXES:
                return None  # decided from the File Meta alone: a deflated data set is never inflated here
            ds = pydicom.dcmread(str(path), force=True)
        except Exception:  # a preview is optional: any failure means "no preview", read_image reports it
            return None
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            return None
        meta = read_metadata(ds, path)
        levels = max(0, math.ceil(math.log2(max(meta.rows, meta.columns) / max_side)))
        try:
            frame = next(generate_frames(ds.PixelData, number_of_frames=meta.number_of_frames))
            picture = Image.open(io.BytesIO(frame))
            picture.reduce = levels
            picture.load()
        except (StopIteration, OSError, ValueError, SyntaxError, UnidentifiedImageError):
            return None
        stored = np.asarray(picture)
        if picture.mode.startswith("I;16") and meta.bits_stored and meta.bits_stored < 16:
            stored = stored >> (16 - meta.bits_stored)  # the decoder widens samples to 16 bits
        if int(ds.get("PixelRepresentation", 0)) == 1 and stored.dtype == np.uint16:
            stored = stored.view(np.int16)
        pixels = presentation_values(ds, stored, meta)
    return Preview(Radiograph(np.ascontiguousarray(pixels, dtype=np.float32), meta), scale=2 ** levels)
