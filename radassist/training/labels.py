"""The ONE table that maps dataset label names to the classifier's labels.

Training and `radassist evaluate` both read labels.csv folders through `targets_for_row`, so a dataset
name means the same thing in both. Values: 1 = positive, 0 = negative, absent = unknown (the image
does not count for that label, neither in the loss nor in the metrics).

Model labels
- pneumonia: any infective pneumonia, pediatric (Kermany PNEUMONIA) or adult (COVID-19, SARS, named
  bacterial/fungal pneumonias). Negatives: NORMAL / No finding. ARDS alone is not an infection: unknown.
- viral_pattern: viral vs bacterial pattern, from the pediatric `subtype` column only. Defined only on
  pneumonia-positive images (conditional on pneumonia). Adult COVID/SARS are not used: nearly every adult
  pneumonia here is viral, so "adult" would become the viral signal.
- opacity: abnormal lung (airspace/interstitial) opacity. Positives: every pneumonia-type or ARDS image,
  since these diseases are diagnosed on a radiographic opacity; negatives: NORMAL / No finding. Where a
  radiologist drew lesion masks (covid_cxr_seg, column `mask_classes`) the masks decide: ground-glass or
  consolidation mask present -> 1, absent -> 0. Known noise: covid_hannover is "COVID-19 positive
  in-patient", not "opacity seen"; a few of its films may be clear.
"""

from __future__ import annotations

import re

LABELS: tuple[str, ...] = ("pneumonia", "viral_pattern", "opacity")
DISPLAY_NAMES = {
    "pneumonia": "Pneumonia",
    "viral_pattern": "Viral (vs bacterial) pneumonia pattern",
    "opacity": "Abnormal lung opacity",
}
CONDITIONAL_ON: dict[str, str | None] = {"pneumonia": None, "viral_pattern": "pneumonia", "opacity": None}

_PNEUMONIA = {"pneumonia": 1, "opacity": 1}
_NORMAL = {"pneumonia": 0, "opacity": 0}

# dataset label name (case-insensitive) -> model label values. Names not listed are unknown for every label.
DATASET_LABELS: dict[str, dict[str, int]] = {
    # negatives
    "normal": _NORMAL,  # pediatric_pneumonia NORMAL, covid_qu_ex Normal, nih_cxr14 normal
    "no finding": _NORMAL,  # covidx_actualmed, covidx_figure1, covid_cxr_seg
    # infective pneumonias
    "pneumonia": _PNEUMONIA,  # pediatric PNEUMONIA (subtype below), covidx_figure1 Pneumonia
    "covid-19": _PNEUMONIA,
    "sars": _PNEUMONIA,
    "streptococcus": _PNEUMONIA,
    "klebsiella": _PNEUMONIA,
    "legionella": _PNEUMONIA,
    "pneumocystis": _PNEUMONIA,
    # opacity without (necessarily) infection
    "ards": {"opacity": 1},
    # unknown on purpose: "inconclusive", "not stated", "non-covid" (COVID-QU-Ex: other lung disease),
    # "abnormal" (NIH 64 px folder: the findings it covers are not stated)
}

# pediatric `subtype` column -> viral_pattern, used only when the row is pneumonia-positive
SUBTYPES: dict[str, int] = {"bacterial": 0, "viral": 1}

# covid_cxr_seg: radiologist lesion masks decide opacity where the row lists its mask classes
OPACITY_MASK_CLASSES = ("ground_glass_opacity", "consolidation")

# Source folders of children. Every other folder is adult. Used to balance the loss so that
# "adult vs child" cannot stand in for a label (almost every adult image here is positive).
PEDIATRIC_SOURCES = frozenset({"pediatric_pneumonia"})


def split_label_names(field: str) -> list[str]:
    """`labels` cells hold names separated by '|', ';' or ','."""
    return [name.strip().lower() for name in re.split(r"[|;,]", field or "") if name.strip()]


def targets_for_row(row: dict[str, str]) -> dict[str, int]:
    """Model label values for one labels.csv row (only the labels that are known for it)."""
    targets: dict[str, int] = {}
    for name in split_label_names(row.get("labels", "")):
        for label, value in DATASET_LABELS.get(name, {}).items():
            targets[label] = max(targets.get(label, 0), value)  # any positive finding wins
    if targets.get("pneumonia") == 1:
        subtype = (row.get("subtype") or "").strip().lower()
        if subtype in SUBTYPES:
            targets["viral_pattern"] = SUBTYPES[subtype]
    if row.get("mask_classes"):
        classes = set(row["mask_classes"].split(";"))
        targets["opacity"] = int(any(name in classes for name in OPACITY_MASK_CLASSES))
    return targets


def domain_of(source: str) -> str:
    """'pediatric' or 'adult' for a source folder name."""
    return "pediatric" if source in PEDIATRIC_SOURCES else "adult"
