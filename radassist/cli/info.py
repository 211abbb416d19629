"""`radassist info PATH`: what RadAssist reads from an image, as JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="DICOM, PNG, JPEG, TIFF, NIfTI or MHA file")


def info_dict(path: str) -> dict:
    from radassist.io import read_image

    image = read_image(path)
    meta = image.meta
    return {
        "file": image.name,
        "format": meta.file_format,
        "modality": meta.modality,
        "photometric": meta.photometric,
        "rows": meta.rows,
        "columns": meta.columns,
        "bits_stored": meta.bits_stored,
        "pixel_spacing": list(meta.pixel_spacing_mm) if meta.pixel_spacing_mm else None,
        "pixel_spacing_source": meta.pixel_spacing_source,
        "view_position": meta.view_position,
        "body_part": meta.body_part,
        "transfer_syntax": meta.transfer_syntax,
        "transfer_syntax_uid": meta.transfer_syntax_uid,
        "frames": meta.number_of_frames,
        "window_presets": [{"center": p.center, "width": p.width, "name": p.name} for p in meta.window_presets],
        "pixel_min": float(image.pixels.min()),
        "pixel_max": float(image.pixels.max()),
        "warnings": meta.warnings,
    }


def run(args: argparse.Namespace) -> int:
    text = json.dumps(info_dict(args.path), indent=2)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `radassist info X | head`: the reader went away, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
