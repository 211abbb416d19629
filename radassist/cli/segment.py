"""`radassist segment PATH (--out MASK.png | --out-dir DIR)`: anatomy masks of one image, at its own size.

`--out` writes the binary lung mask (right ∪ left); `--out-dir` writes one mask per structure:
right_lung.png, left_lung.png, lungs.png and heart.png (heart only when the model outputs it). Every
mask is 8-bit 0/255, so it can be compared pixel for pixel with a radiologist's mask; the one-line
summary names the areas and the model that drew them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from radassist.outputs import add_overwrite_argument

    parser.add_argument("path", type=Path, help="the radiograph (DICOM, PNG, JPEG, TIFF, NIfTI, MHA)")
    parser.add_argument("--out", type=Path, help="where to write the lung mask PNG (0/255)")
    parser.add_argument("--out-dir", type=Path,
                        help="folder for right_lung.png, left_lung.png, lungs.png and heart.png (0/255)")
    add_overwrite_argument(parser)


def structure_masks(fields) -> dict[str, np.ndarray]:  # noqa: ANN001  (LungFields, imported lazily)
    """File name -> boolean mask, for `--out-dir`."""
    from radassist.imaging.lungs import LEFT_LUNG, RIGHT_LUNG

    masks = {"right_lung.png": fields.labels == RIGHT_LUNG, "left_lung.png": fields.labels == LEFT_LUNG,
             "lungs.png": fields.mask}
    if fields.heart is not None:
        masks["heart.png"] = fields.heart
    return masks


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from radassist.errors import InputRefused
    from radassist.imaging.lungs import segment_lungs
    from radassist.inference.engine import load_model
    from radassist.io import read_image
    from radassist.outputs import OutputWriter, shown

    if args.out is None and args.out_dir is None:
        raise InputRefused("give --out MASK.png (the lung mask) or --out-dir DIR (one mask per structure)")
    writer = OutputWriter(inputs=[args.path], overwrite=args.overwrite)
    image = read_image(args.path)
    load_model("lungseg")  # session build and sha256 check, outside the timing below
    start = time.perf_counter()
    fields = segment_lungs(image)
    elapsed_ms = 1000.0 * (time.perf_counter() - start)
    targets: dict[Path, np.ndarray] = {}
    if args.out is not None:
        targets[args.out] = fields.mask
    if args.out_dir is not None:
        folder = writer.folder(args.out_dir)
        targets.update({folder / name: mask for name, mask in structure_masks(fields).items()})
    for path, mask in targets.items():
        with writer.open(path) as handle:
            Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(handle, format="PNG")
    rows, columns = fields.labels.shape
    areas = ", ".join(f"{side} lung {fields.area_px(side)} px" for side in ("right", "left"))
    if fields.heart is not None:
        areas += f", heart {int(np.count_nonzero(fields.heart))} px"
    written = ", ".join(shown(path) for path in targets)
    notes = "".join(f"; {warning}" for warning in fields.warnings)
    print(f"{image.name}: {areas} ({columns}x{rows} masks -> {written}; {fields.model_id}, "
          f"{elapsed_ms:.0f} ms){notes}")
    return 0
