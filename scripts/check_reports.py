"""Read every image given (files or folders) and check its draft report for what a radiologist would refuse to sign
(radassist/findings/report_checks.py): side contradictions between the findings table and the text, percentages in
FINDINGS, conditional findings spoken of when their condition is negative, differentials for another age group,
anatomy parts neither spoken for nor marked "not assessed". Prints each problem and a summary; exit code 1 when
any was found, 0 otherwise.

A labels.csv beside the images (the ../shared/data format) with an `age` column gives each image its age, as a DICOM
PatientAge would (JPEG and PNG files carry none):

    .venv/bin/python scripts/check_reports.py ../shared/data/nih14/images --labels ../shared/data/nih14/labels.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

IMAGE_SUFFIXES = {".dcm", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".gz", ".mha"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="images or folders of images")
    parser.add_argument("--labels", type=Path, help="labels.csv with `file` and `age` columns (file relative to it)")
    parser.add_argument("--limit", type=int, default=None, help="check at most N images")
    args = parser.parse_args()

    from radassist.errors import RadAssistError
    from radassist.findings.report_checks import report_problems
    from radassist.io import read_image
    from radassist.pipeline.read import read_radiograph

    ages = _ages(args.labels) if args.labels else {}
    images = [p for path in args.paths for p in (sorted(path.rglob("*")) if path.is_dir() else [path])
              if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES][: args.limit]
    tally: Counter[str] = Counter()
    read = refused = 0
    for image_path in images:
        try:
            image = read_image(image_path)
            if image_path.resolve() in ages:
                image.meta.patient_age_years = ages[image_path.resolve()]
            result = read_radiograph(image)
        except RadAssistError as exc:
            refused += 1
            print(f"{image_path.name}: refused ({exc})")
            continue
        read += 1
        for problem in report_problems(result):
            tally[problem.kind.value] += 1
            print(f"{image_path.name}: {problem.kind.value}: {problem.text}")
    print(f"{read} reports checked ({refused} images refused): "
          + (", ".join(f"{n} {kind}" for kind, n in tally.items()) if tally else "no problems"))
    return 1 if tally else 0


def _ages(labels: Path) -> dict[Path, float]:
    """Ages by image; an age that is not a number (jsrt writes '?' for unknown) is left out."""
    ages = {}
    with labels.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                ages[(labels.parent / row["file"]).resolve()] = float(row.get("age") or "")
            except ValueError:
                continue
    return ages


if __name__ == "__main__":
    sys.exit(main())
