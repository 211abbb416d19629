"""labels.csv folders -> image records, and the seeded patient-level train/validation split.

Why groups and not images: many patients have several films (up to 22 in covid_hannover), and the same
radiograph appears in two sources (covid_cxr_seg 9C34AF49... = covidx_figure1 COVID-00022). An image
and its near-twin on both sides of the split would inflate every validation figure, so the split
works on groups = patient, merged across sources when two images are near-identical.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radassist.errors import InputRefused
from radassist.training.labels import age_group_of, targets_for_row

TRAIN = "train"
CALIBRATION = "calibration"  # fits calibration and thresholds: neither trained on nor reported as validation
VALIDATION = "validation"
DUPLICATE_CORRELATION = 0.97  # thumbnails this alike are the same radiograph (re-encoded or re-cropped)


@dataclass
class ImageRecord:
    """One labelled image of a labels.csv folder."""

    source: str  # folder name, e.g. "pediatric_pneumonia"
    file: str  # path relative to the folder, as in labels.csv
    path: Path
    patient: str  # "<source>/<patient_id>"; the file itself when no patient id is given
    targets: dict[str, int]
    row: dict[str, str] = field(repr=False)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.file}"

    @property
    def domain(self) -> str:
        """'pediatric' or 'adult' (the source, or the row's age where the source mixes both)."""
        return age_group_of(self.source, self.row).value

    @property
    def stratum(self) -> str:
        """What the split keeps in proportion inside a source: normal or not, pneumonia or not, and the
        pediatric subtype (coarse on purpose: a stratum per NIH label combination would hold one image each)."""
        return f"{self.targets.get('abnormal')}|{self.targets.get('pneumonia')}|{self.row.get('subtype', '')}"


def read_labels_csv(csv_path: Path, images_root: Path | None = None) -> list[ImageRecord]:
    """All rows of one labels.csv (source = its folder's name; files relative to `images_root` or the folder)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputRefused(f"labels file {csv_path} does not exist")
    root = Path(images_root) if images_root else csv_path.parent
    source = csv_path.parent.name
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "file" not in reader.fieldnames or "labels" not in reader.fieldnames:
            raise InputRefused(f"{csv_path.name} is not a labels.csv (it needs the columns 'file' and 'labels')")
        rows = list(reader)
    records = []
    for row in rows:
        patient_id = (row.get("patient_id") or "").strip() or row["file"]
        records.append(ImageRecord(source=source, file=row["file"], path=root / row["file"],
                                   patient=f"{source}/{patient_id}", targets=targets_for_row(row, source), row=row))
    return records


def read_folders(folders: list[Path]) -> list[ImageRecord]:
    """Records of several labels.csv folders; images without any known label are dropped."""
    records = []
    for folder in folders:
        records += [r for r in read_labels_csv(Path(folder) / "labels.csv") if r.targets]
    return records


def duplicate_groups(records: list[ImageRecord], thumbnails: np.ndarray) -> list[str]:
    """Group id per record: its patient, merged (union-find) with every near-identical image's patient."""
    parent = {r.patient: r.patient for r in records}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    flat = thumbnails.reshape(len(records), -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True) + 1e-9
    correlation = flat @ flat.T
    for i, j in zip(*np.nonzero(np.triu(correlation, k=1) > DUPLICATE_CORRELATION), strict=True):
        parent[find(records[i].patient)] = find(records[j].patient)
    return [find(r.patient) for r in records]


def patient_split(records: list[ImageRecord], groups: list[str], fractions: dict[str, float],
                  seed: int) -> list[str]:
    """TRAIN / CALIBRATION / VALIDATION per record (`fractions` gives the held-out parts, e.g.
    {VALIDATION: 0.15, CALIBRATION: 0.15}; the rest trains). Whole groups move; within each source the groups
    are shuffled per stratum (finding|subtype of the group's first image) and dealt to the held-out parts, in
    the order given, until each fraction is reached."""
    by_group: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        by_group[group].append(index)
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for group, members in sorted(by_group.items()):
        first = records[members[0]]
        strata[(first.source, first.stratum)].append(group)
    rng = random.Random(seed)
    assignment = [TRAIN] * len(records)
    for key in sorted(strata):
        stratum_groups = strata[key]
        rng.shuffle(stratum_groups)
        total = sum(len(by_group[g]) for g in stratum_groups)
        targets = {part: fraction * total for part, fraction in fractions.items()}
        taken = dict.fromkeys(fractions, 0)
        for group in stratum_groups:
            size = len(by_group[group])
            part = next((p for p in fractions if taken[p] < targets[p] and taken[p] + size <= 2 * targets[p] + 1),
                        TRAIN)
            for index in by_group[group]:
                assignment[index] = part
            if part != TRAIN:
                taken[part] += size
    return assignment


def write_split(path: Path, records: list[ImageRecord], assignment: list[str], groups: list[str]) -> None:
    """The split as CSV (source, file, group, split): `radassist evaluate --split-file` reads it back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "file", "group", "split"])
        for record, split, group in zip(records, assignment, groups, strict=True):
            writer.writerow([record.source, record.file, group, split])


def read_split(path: Path, split: str = VALIDATION) -> set[str]:
    """Keys "<source>/<file>" of the rows of a split file that belong to `split`."""
    path = Path(path)
    if not path.is_file():
        raise InputRefused(f"split file {path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"source", "file", "split"} <= set(reader.fieldnames):
            raise InputRefused(f"{path.name} is not a split file (it needs the columns source, file, split)")
        return {f"{row['source']}/{row['file']}" for row in reader if row["split"] == split}
