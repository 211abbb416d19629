"""Size limits checked from headers BEFORE any pixel data is decoded (decompression-bomb guard)."""

from __future__ import annotations

from radassist.errors import InputRefused

MAX_SIDE = 16_384  # px; the largest detectors are ~4300 px, digitised films ~5000 px
MAX_PIXELS = 120_000_000  # per frame, ~ 11000 x 11000
MAX_FRAMES = 4_096


def check_dimensions(rows: int, columns: int, frames: int = 1, samples: int = 1) -> None:
    """Refuse absurd sizes with a sentence, so a hostile header cannot make us allocate gigabytes."""
    if rows <= 0 or columns <= 0:
        raise InputRefused(f"the image declares an empty size ({rows} x {columns} pixels)")
    if rows > MAX_SIDE or columns > MAX_SIDE or rows * columns > MAX_PIXELS:
        raise InputRefused(
            f"the image declares {rows} x {columns} pixels, larger than any radiograph "
            f"(limit {MAX_SIDE} px a side); refusing to decode it"
        )
    if frames <= 0 or frames > MAX_FRAMES:
        raise InputRefused(f"the image declares {frames} frames; refusing to decode it")
    if samples not in (1, 3, 4):
        raise InputRefused(f"the image declares {samples} samples per pixel, which is not a greyscale or colour image")
