"""`radassist read PATH`: findings, saliency overlays, radiomics, QA verdict, model identity, timings."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from radassist.outputs import OutputWriter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from radassist.outputs import add_overwrite_argument

    parser.add_argument("path", help="chest radiograph (DICOM, PNG, JPEG, ...)")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--saliency-out", metavar="DIR", help="write one saliency overlay PNG per finding")
    parser.add_argument("--occlusion", action="store_true",
                        help="use occlusion sensitivity (model-agnostic, slower) instead of CAM saliency")
    parser.add_argument("--no-report", action="store_true", help="skip the draft report")
    parser.add_argument("--record", action="store_true",
                        help="store the AI result in the feedback store as an unsigned session (pre-read)")
    parser.add_argument("--store", metavar="PATH", help="feedback store (default: RADASSIST_DATA_DIR or user data)")
    add_overwrite_argument(parser)


def write_overlays(result, image, folder: Path, writer: OutputWriter) -> list[Path]:
    """One `<stem>_<label>.png` per saliency map; existing files are left alone unless --overwrite."""
    from PIL import Image

    from radassist.explain.overlay import blend_overlay
    from radassist.imaging.windowing import normalized_for_model

    writer.folder(folder)
    stem = Path(result.meta.source_path).stem
    targets = {label: folder / f"{stem}_{label}.png" for label in result.saliency}
    for path in targets.values():
        writer.check(path)  # refuse before writing any, so a refusal leaves no partial set behind
    gray = normalized_for_model(image)
    for label, saliency in result.saliency.items():
        with writer.open(targets[label]) as handle:
            Image.fromarray(blend_overlay(gray, saliency)).save(handle, format="PNG")
    return list(targets.values())


def run(args: argparse.Namespace) -> int:
    from radassist.io import read_image
    from radassist.outputs import OutputWriter
    from radassist.pipeline.read import ReadOptions, read_radiograph
    from radassist.pipeline.result_json import result_to_dict

    writer = OutputWriter(inputs=[args.path], overwrite=args.overwrite)
    started = time.perf_counter()
    image = read_image(args.path)
    load_ms = round((time.perf_counter() - started) * 1000.0, 2)
    result = read_radiograph(image, ReadOptions(occlusion=args.occlusion, report=not args.no_report))
    result.timings_ms["load"] = load_ms  # the image was read here, before the pipeline
    payload = result_to_dict(result)
    if args.saliency_out:
        payload["saliency_png"] = [str(p) for p in write_overlays(result, image, Path(args.saliency_out), writer)]
    if args.record:
        from radassist.feedback import record_read

        payload["recorded_session"] = record_read(result, store_path=args.store, radiograph=image)
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    print(f"{payload['file']}: {result.qa.reason}; model {result.model_id} ({result.provider})")
    if result.qa.domain is not None and not result.qa.domain.inside:
        print(f"  ** {result.qa.domain.notice} **")
    for f in payload["findings"]:
        condition = f" (if {f['conditional_on']})" if f["conditional_on"] else ""
        print(f"  {f['name']:<28} p={f['probability']:.3f} thr={f['threshold']:.3f} {f['status']:<8}"
              f"{condition} zone={f['zone'] or '-'}")
    for text in payload["radiomics"]["evidence"]:
        print(f"  evidence: {text}")
    if result.report is not None:
        print("\n" + result.report.text())
    print("timings (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in result.timings_ms.items()))
    return 0
