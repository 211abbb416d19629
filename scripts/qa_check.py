"""Input QA measured the way a reading room meets it, through `read_radiograph` (header check, chest check, lung
fields), on the images of ../shared/data:

- false refusals: every labelled frontal chest film of every folder (the bundled chest DICOMs too);
- probes that must be refused: the chest-check validation patients' films rotated 90/180/270 degrees, mirrored
  and grey-inverted (pixel copies, nothing written to disk), and every non-chest DICOM of ../shared/data/dicom with
  its BodyPartExamined removed and, separately, forged to CHEST and its Modality forged to CR (so only the image
  can tell);
- the domain notice: share of accepted films marked "outside validated use", per folder (mirrored films are read
  with a "may be mirrored" notice, not refused: the side marker decides).

    python scripts/qa_check.py ../shared/data --out build/qa_check.json [--limit-per-folder N]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from radassist.errors import RadAssistError
from radassist.io import read_image
from radassist.pipeline.read import ReadOptions, read_radiograph
from radassist.training.chest_check_data import ChestCheckClass, transformed, with_pixels
from radassist.training.chest_check_train import is_validation
from radassist.training.datasets import read_labels_csv

OPTIONS = ReadOptions(radiomics=False, report=False, enforce_qa=False)
PROBES = (ChestCheckClass.ROTATED_90, ChestCheckClass.ROTATED_180, ChestCheckClass.ROTATED_270,
          ChestCheckClass.MIRRORED, ChestCheckClass.INVERTED)
SEED = 20240611


def verdict(image) -> tuple[bool, bool | None, str]:
    """(accepted, inside the validated domain or None, reason or the domain notice)."""
    result = read_radiograph(image, OPTIONS)
    if result.qa.accepted and result.qa.domain is not None:
        return True, result.qa.domain.inside, result.qa.domain.notice
    return result.qa.accepted, None, result.qa.reason


def folders_of(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/labels.csv"))


def chest_dicoms(root: Path) -> tuple[list[Path], list[Path]]:
    rows = list(csv.DictReader(open(root / "dicom" / "index.csv", encoding="utf-8")))
    chest = [root / "dicom" / r["file"] for r in rows
             if r["body_part"] == "CHEST" or "real chest radiograph" in r["notes"].lower()]
    other = [root / "dicom" / r["file"] for r in rows if root / "dicom" / r["file"] not in chest]
    return chest, other


def forged(path: Path, tmp: Path, mode: str) -> Path:
    """A copy of a non-chest DICOM whose header no longer tells: BodyPartExamined removed, or forged to CHEST
    with Modality CR."""
    import pydicom

    dataset = pydicom.dcmread(path, force=True)
    if "BodyPartExamined" in dataset:
        del dataset.BodyPartExamined
    if mode == "chest":
        dataset.BodyPartExamined = "CHEST"
        dataset.Modality = "CR"
    out = tmp / f"{mode}_{path.name}"
    dataset.save_as(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit-per-folder", type=int, default=0, help="0 = every image")
    args = parser.parse_args(argv)
    started = time.time()
    report: dict = {"real_films": {}, "probes": {}, "non_chest": {}}
    refused_examples: list[dict] = []
    probe_counts: dict[str, Counter] = {p.name.lower(): Counter() for p in PROBES}
    for folder in folders_of(args.data):
        records = read_labels_csv(folder / "labels.csv")
        if args.limit_per_folder:
            records = records[:: max(1, len(records) // args.limit_per_folder)][: args.limit_per_folder]
        counts: Counter = Counter()
        for record in records:
            try:
                image = read_image(record.path)
            except RadAssistError as exc:
                counts["unreadable"] += 1
                refused_examples.append({"file": record.key, "reason": str(exc)})
                continue
            accepted, inside, reason = verdict(image)
            counts["images"] += 1
            counts["refused"] += not accepted
            counts["outside_validated_use"] += bool(accepted and inside is False)
            if not accepted:
                refused_examples.append({"file": record.key, "reason": reason})
            if is_validation(record.patient, SEED):
                for probe in PROBES:
                    probe_image = with_pixels(image, transformed(image.pixels, probe))
                    probe_image = dataclasses.replace(probe_image, meta=dataclasses.replace(
                        probe_image.meta, source_path=f"{record.key}#{probe.name.lower()}"))
                    accepted, _, said = verdict(probe_image)
                    probe_counts[probe.name.lower()]["images"] += 1
                    probe_counts[probe.name.lower()]["refused"] += not accepted
                    probe_counts[probe.name.lower()]["accepted_with_mirror_notice"] += accepted and "mirrored" in said
        report["real_films"][folder.name] = dict(counts)
        print(f"{folder.name}: {counts['refused']} of {counts['images']} real films refused, "
              f"{counts['outside_validated_use']} outside validated use", flush=True)
    chest, other = chest_dicoms(args.data)
    counts = Counter()
    for path in chest:
        accepted, inside, reason = verdict(read_image(path))
        counts["images"] += 1
        counts["refused"] += not accepted
        if not accepted:
            refused_examples.append({"file": str(path.relative_to(args.data)), "reason": reason})
    report["real_films"]["dicom (chest)"] = dict(counts)
    print(f"dicom (chest): {counts['refused']} of {counts['images']} real films refused", flush=True)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for path in other:
            for mode in ("no_body_part", "chest"):
                key = f"{path.name} ({mode})"
                try:
                    image = read_image(forged(path, Path(tmp), mode))
                except (RadAssistError, Exception) as exc:  # noqa: BLE001 (a file the reader refuses is refused)
                    report["non_chest"][key] = {"refused": True, "reason": f"not readable: {exc}"[:200]}
                    continue
                accepted, _, reason = verdict(image)
                report["non_chest"][key] = {"refused": not accepted, "reason": reason}
    for name, c in probe_counts.items():
        report["probes"][name] = {**c, "refused_share": c["refused"] / max(1, c["images"])}
        print(f"probe {name}: {c['refused']} of {c['images']} refused, "
              f"{c['accepted_with_mirror_notice']} read with a 'may be mirrored' notice")
    refused_non_chest = sum(v["refused"] for v in report["non_chest"].values())
    print(f"non-chest DICOMs with the header stripped or forged: {refused_non_chest} of "
          f"{len(report['non_chest'])} refused")
    for key, value in report["non_chest"].items():
        if not value["refused"]:
            print(f"  ACCEPTED: {key}")
    total = sum(v.get("images", 0) for v in report["real_films"].values())
    refused = sum(v.get("refused", 0) for v in report["real_films"].values())
    report["summary"] = {"real_films": total, "real_films_refused": refused,
                         "false_refusal_rate": refused / max(1, total),
                         "worst_folder_false_refusal_rate": max(v.get("refused", 0) / max(1, v.get("images", 0))
                                                                for v in report["real_films"].values()),
                         "seconds": round(time.time() - started, 1)}
    report["refused_real_films"] = refused_examples
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"real films falsely refused: {refused} of {total} ({refused / max(1, total):.2%}); "
          f"worst folder {report['summary']['worst_folder_false_refusal_rate']:.2%}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
