"""Size limits checked from headers BEFORE any pixel data is decoded (decompression-bomb guard).

The budget: reading any one input (`radassist info`, `read`, `segment`) stays under 1.5 GB of memory and a few
seconds. The file itself is at most MAX_FILE_BYTES (pydicom holds a whole data set in memory); what a decoder
allocates at once - every slice or page it decodes, times rows x columns x samples x bytes a sample - is at most
MAX_DECODED_BYTES; the first frame, the one RadAssist uses, is at most MAX_PIXELS (it becomes float32 and is
copied a few times on its way to the model and the display). Measured peak RSS of the largest allowed inputs:
an 8000 x 8000 RGBA 16-bit PNG 1.15 GB (`info` and `read`), an 8000 x 8000 greyscale radiograph 1.03 GB (`read`);
a 10950 x 10950 one, allowed before, took `read` to 1.75 GB.
"""

from __future__ import annotations

import re
import zlib
from typing import BinaryIO

from radassist.errors import InputRefused

MAX_SIDE = 16_384  # px; the largest detectors are ~4300 px, digitised films ~5000 px
MAX_PIXELS = 64_000_000  # per frame, 8000 x 8000; `read` of a 10950 x 10950 PNG peaked at 1.75 GB
MAX_FRAMES = 4_096
MAX_INFLATED_BYTES = 512 * 2**20  # a deflated DICOM data set; a 16-bit frame at MAX_PIXELS is 128 MB
MAX_FILE_BYTES = 512 * 2**20  # an uncompressed 16-bit 4300 x 4300 radiograph is 37 MB
MAX_DECODED_BYTES = 512 * 2**20  # all a decoder produces at once (a 3D file decodes every slice)

# JPEG frame headers SOF0-3, 5-7, 9-11, 13-15 and JPEG-LS SOF55: marker, length (2), precision (1), height (2),
# width (2). In entropy-coded data 0xFF is followed by 0x00, RSTn or (JPEG-LS) a byte < 0x80, never by these.
_JPEG_FRAME_HEADER = re.compile(rb"\xff[\xc0-\xc3\xc5-\xc7\xc9-\xcb\xcd-\xcf\xf7]")
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"  # a JPEG 2000 code-stream starts with SOC, then SIZ


def check_dimensions(rows: int, columns: int, frames: int = 1, samples: int = 1) -> None:
    """Refuse absurd sizes with a sentence, so a hostile header cannot make us allocate gigabytes."""
    if rows <= 0 or columns <= 0:
        raise InputRefused(f"the image declares an empty size ({rows} x {columns} pixels)")
    if rows > MAX_SIDE or columns > MAX_SIDE or rows * columns > MAX_PIXELS:
        raise InputRefused(
            f"the image declares {rows} x {columns} pixels, larger than any radiograph "
            f"(limits: {MAX_SIDE} px a side, {MAX_PIXELS // 1_000_000} million pixels); refusing to decode it"
        )
    if frames <= 0 or frames > MAX_FRAMES:
        raise InputRefused(f"the image declares {frames} frames; refusing to decode it")
    if samples not in (1, 3, 4):
        raise InputRefused(f"the image declares {samples} samples per pixel, which is not a greyscale or colour image")


def check_decoded_bytes(name: str, dimensions: tuple[int, ...], samples: int, bytes_per_sample: int) -> None:
    """Refuse a file whose decoder would allocate more than MAX_DECODED_BYTES (all slices or pages at once)."""
    total = samples * bytes_per_sample
    for size in dimensions:
        total *= max(int(size), 1)
    if total > MAX_DECODED_BYTES:
        shape = " x ".join(str(int(size)) for size in dimensions)
        raise InputRefused(
            f"{name} declares {shape} pixels of {samples * bytes_per_sample * 8} bits, which would take "
            f"{total / 2**20:,.0f} MB to decode (limit {MAX_DECODED_BYTES // 2**20} MB); refusing to read it"
        )


def check_inflated_size(stream: BinaryIO, name: str) -> None:
    """Count what a raw-deflate stream inflates to, 1 MiB at a time, and refuse it past MAX_INFLATED_BYTES.

    Readers such as pydicom inflate a whole deflated data set in memory before any header can be checked:
    a 1 MB file that inflates to 1 GiB took `radassist info` to 2.1 GB of memory (found while fuzzing).
    Raises zlib.error when the stream is not valid deflate data.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    inflated = 0
    while not inflater.eof and (chunk := stream.read(2**20)):
        # Stop at the end of the deflate stream: bytes after it (pydicom pads the data set to an even length)
        # stay in unconsumed_tail for ever, which made a valid deflated DICOM with odd compressed length hang.
        while chunk and not inflater.eof:
            inflated += len(inflater.decompress(chunk, 2**20))
            if inflated > MAX_INFLATED_BYTES:
                raise InputRefused(
                    f"{name} is compressed (deflated) and would expand to more than "
                    f"{MAX_INFLATED_BYTES // 2**20} MB; refusing to read it"
                )
            chunk = inflater.unconsumed_tail


def check_codestream_size(frame: bytes, is_jpeg2000: bool, rows: int, columns: int) -> None:
    """Refuse a compressed frame whose own header declares a size other than the DICOM header's Rows x Columns.

    Decoders trust the code-stream's size, not the DICOM header: a 358 KB file declaring 64 x 64 pixels whose
    JPEG frame header said 65535 x 65535 took pylibjpeg to 16 GB and 221 s, and GDCM 3.2.6 aborts the process
    (std::length_error) or segfaults (a width of 0) on JPEG-LS frames that disagree with the header (found by
    fuzz/fuzz_reader.py). Such a frame can never decode to Rows x Columns anyway. Every JPEG frame header is
    checked because decoders resynchronise on a later one.
    """
    for height, width in _codestream_sizes(frame, is_jpeg2000):
        if (height, width) != (rows, columns):
            raise InputRefused(
                f"the compressed pixel data declares {height} x {width} pixels but the DICOM header declares "
                f"{rows} x {columns}; refusing to decode it"
            )


def _codestream_sizes(frame: bytes, is_jpeg2000: bool) -> list[tuple[int, int]]:
    """(height, width) from a JPEG 2000 SIZ segment, or from every JPEG / JPEG-LS frame header."""
    def number(start: int, size: int) -> int:
        return int.from_bytes(frame[start:start + size], "big")

    if is_jpeg2000:
        soc = frame.find(_J2K_SOC_SIZ)  # then SIZ: Lsiz (2), Rsiz (2), Xsiz, Ysiz, XOsiz, YOsiz (4 each)
        if soc < 0:
            return []
        return [(number(soc + 12, 4) - number(soc + 20, 4), number(soc + 8, 4) - number(soc + 16, 4))]
    return [(number(m.start() + 5, 2), number(m.start() + 7, 2)) for m in _JPEG_FRAME_HEADER.finditer(frame)]
