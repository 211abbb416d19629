"""The ONE table that maps dataset label names to the classifier's labels.

Training and `radassist evaluate` both read labels.csv folders through `targets_for_row`, so a dataset
name means the same thing in both. Values: 1 = positive, 0 = negative, absent = unknown (the image does not
count for that label, neither in the loss nor in the metrics).

Model labels (ids as in the model card, in output order)
| id | positive when the row says | negative when |
|---|---|---|
| abnormal | any finding (NIH's 14 labels, pneumonia/COVID-19/SARS/ARDS, a JSRT nodule, NIH-64px "abnormal") | NORMAL / No Finding |
| opacity | consolidation, pneumonia, infiltration, COVID-19/SARS/ARDS airspace disease; covid_cxr_seg: a ground-glass or consolidation mask | normal; a complete source that does not list it |
| effusion | NIH Effusion; covid_cxr_seg pleural_effusion mask | normal; complete source without it |
| cardiomegaly | NIH Cardiomegaly | normal; NIH without it |
| nodule_mass | NIH Nodule or Mass; JSRT nodule | normal; NIH without it; JSRT no-nodule |
| pneumothorax | NIH Pneumothorax; covid_cxr_seg pneumothorax mask | normal; complete source without it |
| atelectasis | NIH Atelectasis | normal; NIH without it |
| edema | NIH Edema | normal; NIH without it |
| pneumonia | infective pneumonia: pediatric PNEUMONIA, NIH Pneumonia, COVID-19, SARS, named organisms | normal; NIH without it |
| viral_pattern | pediatric `subtype` viral (1) vs bacterial (0), only on pediatric pneumonia rows | (conditional on pneumonia) |

"Complete source": a source whose labels cover that finding for every image, so a finding it does not list is
absent: NIH ChestX-ray14 (all 14 labels mined from each report; noisy, see its SOURCE.md), covid_cxr_seg for the
mask classes a radiologist drew (opacity, effusion, pneumothorax), JSRT for nodules. Anywhere else an unlisted
finding is unknown and masked out of the loss, not called negative (a COVID-19 film may well have an effusion).
JSRT "No Finding" means "no nodule"; its films were chosen as normal controls, so they count as normal.
"""

from __future__ import annotations

import re

from radassist.results import AgeGroup

LABELS: tuple[str, ...] = ("abnormal", "opacity", "effusion", "cardiomegaly", "nodule_mass", "pneumothorax",
                           "atelectasis", "edema", "pneumonia", "viral_pattern")
DISPLAY_NAMES = {
    "abnormal": "Abnormal radiograph (any finding)",
    "opacity": "Airspace opacity",
    "effusion": "Pleural effusion",
    "cardiomegaly": "Cardiomegaly",
    "nodule_mass": "Nodule or mass",
    "pneumothorax": "Pneumothorax",
    "atelectasis": "Atelectasis",
    "edema": "Pulmonary edema",
    "pneumonia": "Pneumonia",
    "viral_pattern": "Viral (vs bacterial) pneumonia pattern",
}
CONDITIONAL_ON: dict[str, str | None] = {label: None for label in LABELS} | {"viral_pattern": "pneumonia"}
FINDINGS = tuple(label for label in LABELS if label not in ("abnormal", "viral_pattern"))  # what NORMAL negates
OUTSIDE_LUNGS = frozenset({"cardiomegaly"})  # findings whose saliency is not kept to the lung fields
# outputs learnt from one age group only: not shown for films of the other (empty: every age group)
LABEL_AGE_GROUPS: dict[str, tuple[str, ...]] = {"viral_pattern": ("pediatric",)}


# Source folders of children (every image in them); elsewhere the `age` column decides when it is given.
PEDIATRIC_SOURCES = frozenset({"pediatric_pneumonia"})

_PNEUMONIA = {"abnormal": 1, "pneumonia": 1, "opacity": 1}
_NORMAL = {label: 0 for label in ("abnormal", *FINDINGS)}

# dataset label name (case-insensitive) -> model label values. Names not listed are unknown for every label,
# except that any name below counts as a finding for `abnormal`.
DATASET_LABELS: dict[str, dict[str, int]] = {
    # negatives
    "normal": _NORMAL,  # pediatric NORMAL, covid_qu_ex Normal, nih_cxr14_64px normal
    "no finding": _NORMAL,  # NIH, JSRT (no nodule), covidx, covid_ieee8023
    # infective pneumonias
    "pneumonia": _PNEUMONIA,
    "covid-19": _PNEUMONIA,
    "sars": _PNEUMONIA,
    "influenza": _PNEUMONIA,
    "varicella": _PNEUMONIA,
    "streptococcus": _PNEUMONIA,
    "klebsiella": _PNEUMONIA,
    "legionella": _PNEUMONIA,
    "pneumocystis": _PNEUMONIA,
    "e.coli": _PNEUMONIA,
    "mycoplasma bacterial pneumonia": _PNEUMONIA,
    "bacterial": _PNEUMONIA,
    # airspace disease without (necessarily) infection
    "ards": {"abnormal": 1, "opacity": 1},
    "lipoid": {"abnormal": 1, "opacity": 1},
    "consolidation": {"abnormal": 1, "opacity": 1},
    "infiltration": {"abnormal": 1, "opacity": 1},
    # NIH ChestX-ray14 findings
    "effusion": {"abnormal": 1, "effusion": 1},
    "cardiomegaly": {"abnormal": 1, "cardiomegaly": 1},
    "nodule": {"abnormal": 1, "nodule_mass": 1},
    "mass": {"abnormal": 1, "nodule_mass": 1},
    "pneumothorax": {"abnormal": 1, "pneumothorax": 1},
    "atelectasis": {"abnormal": 1, "atelectasis": 1},
    "edema": {"abnormal": 1, "edema": 1},
    "emphysema": {"abnormal": 1},
    "fibrosis": {"abnormal": 1},
    "hernia": {"abnormal": 1},
    "pleural_thickening": {"abnormal": 1},
    "abnormal": {"abnormal": 1},  # nih_cxr14_64px: which findings it covers is not stated
    "non-covid": {"abnormal": 1},  # COVID-QU-Ex: other lung disease
    # unknown on purpose: "inconclusive", "not stated"; "benign"/"malignant" qualify a JSRT nodule
}

# Sources whose labels are complete for some findings: a finding they do not list is absent (0).
COMPLETE_FINDINGS: dict[str, tuple[str, ...]] = {
    "nih14": ("abnormal", *FINDINGS),
    "jsrt": ("nodule_mass",),
}

# pediatric `subtype` column -> viral_pattern, used only when the row is pneumonia-positive
SUBTYPES: dict[str, int] = {"bacterial": 0, "viral": 1}

# covid_cxr_seg: radiologist masks decide these labels where the row lists its mask classes
MASK_CLASS_LABELS: dict[str, tuple[str, ...]] = {
    "opacity": ("ground_glass_opacity", "consolidation"),
    "effusion": ("pleural_effusion",),
    "pneumothorax": ("pneumothorax",),
}


def split_label_names(field: str) -> list[str]:
    """`labels` cells hold names separated by '|', ';' or ','."""
    return [name.strip().lower() for name in re.split(r"[|;,]", field or "") if name.strip()]


def targets_for_row(row: dict[str, str], source: str = "") -> dict[str, int]:
    """Model label values for one labels.csv row of folder `source` (only the labels known for it)."""
    targets: dict[str, int] = {}
    names = split_label_names(row.get("labels", ""))
    for name in names:
        for label, value in DATASET_LABELS.get(name, {}).items():
            targets[label] = max(targets.get(label, 0), value)  # any positive finding wins
    if targets.get("abnormal") == 1 and any(name in ("normal", "no finding") for name in names):
        targets = {k: v for k, v in targets.items() if v == 1}  # "No Finding" beside a finding: trust the finding
    if targets:
        for label in COMPLETE_FINDINGS.get(source, ()):
            targets.setdefault(label, 0)
    if targets.get("pneumonia") == 1:  # only the pediatric source has a subtype column
        subtype = (row.get("subtype") or "").strip().lower()
        if subtype in SUBTYPES:
            targets["viral_pattern"] = SUBTYPES[subtype]
    if row.get("mask_classes"):
        classes = set(row["mask_classes"].split(";"))
        for label, mask_classes in MASK_CLASS_LABELS.items():
            targets[label] = int(any(name in classes for name in mask_classes))
    return targets


def age_years(row: dict[str, str]) -> float | None:
    """The patient's age from the `age` column, where a number is given."""
    try:
        value = float((row.get("age") or "").strip())
    except ValueError:
        return None
    return value if 0 <= value < 130 else None


def age_group_of(source: str, row: dict[str, str]) -> AgeGroup:
    """Pediatric for the pediatric source and for rows whose age is under 18; adult otherwise."""
    if source in PEDIATRIC_SOURCES:
        return AgeGroup.PEDIATRIC
    age = age_years(row)
    return AgeGroup.ADULT if age is None else AgeGroup.of_age(age)
