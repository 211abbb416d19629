"""`radassist segment PATH --out MASK.png`: the binary lung mask of one image, at the image's own size.

The mask is 8-bit 0/255 (both lungs, right ∪ left) so it can be compared pixel for pixel with a
radiologist's mask; the one-line summary names the lung areas and the model that drew them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the radiograph (DICOM, PNG, JPEG, TIFF, NIfTI, MHA)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the mask PNG (0/255)")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from radassist.errors import InputRefused
    from radassist.imaging.lungs import segment_lungs
    from radassist.inference.engine import load_model
    from radassist.io import read_image

    if args.out.resolve() == args.path.resolve():
        raise InputRefused("--out names the input image; RadAssist never overwrites a source image")
    image = read_image(args.path)
    load_model("lungseg")  # session build and sha256 check, outside the timing below
    start = time.perf_counter()
    fields = segment_lungs(image)
    elapsed_ms = 1000.0 * (time.perf_counter() - start)
    mask = np.where(fields.mask, 255, 0).astype(np.uint8)
    try:
        Image.fromarray(mask).save(args.out, format="PNG")
    except OSError as exc:
        raise InputRefused(f"the mask cannot be written to {args.out} ({exc.strerror or exc})") from None
    rows, columns = mask.shape
    areas = ", ".join(f"{side} lung {fields.area_px(side)} px" for side in ("right", "left"))
    notes = "".join(f"; {warning}" for warning in fields.warnings)
    print(f"{image.name}: {areas} ({columns}x{rows} mask -> {args.out}; {fields.model_id}, "
          f"{elapsed_ms:.0f} ms){notes}")
    return 0
