"""Input QA: is this an upright frontal chest radiograph, and is it inside what the model was validated on?
Checked before any finding is shown.

Three layers, because each alone is fooled: DICOM metadata (modality, body part, view) refuses what the header
already tells us (CT, MR, lateral views, a knee); the chest check model refuses what the header hides or gets
wrong (rotated, mirrored or grey-inverted films, a hip or limb whose header says CHEST) and the lung fields must
look like two lungs. A film that passes is then placed inside or outside the validated domain (patient age from
the header or the chest check's estimate, the classifier's embedding distance): outside is not a refusal but a
visible "outside validated use" notice beside the findings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radassist.image import ImageMetadata, Radiograph
from radassist.inference.card import ModelCard, OodReference
from radassist.results import AgeGroup, AgeSource, DomainVerdict, QAVerdict

# chest check class -> what the reader is told (classes as in models/chest_check.card.json)
CHEST_CHECK_REASONS = {
    "rotated_90": "the image appears rotated by 90 degrees",
    "rotated_180": "the image appears upside down",
    "rotated_270": "the image appears rotated by 90 degrees",
    "inverted": "the image appears grey-inverted (bones dark, lungs bright)",
    "not_chest": "the image does not look like a chest radiograph",
}

# Modalities under which a chest radiograph is sent. OT/SC (secondary capture) is allowed and left to the
# image-based checks, because digitised films and research conversions (e.g. NIH ChestX-ray14) use them.
RADIOGRAPH_MODALITIES = {"CR", "DX", "DR", "RG", "OT", "SC", "DF"}
MODALITY_NAMES = {
    "CT": "a CT image", "MR": "an MR image", "NM": "a nuclear medicine image", "US": "an ultrasound image",
    "XA": "an angiography (XA) image", "MG": "a mammogram", "PT": "a PET image", "RF": "a fluoroscopy image",
    "IO": "an intra-oral (dental) radiograph", "PX": "a panoramic dental radiograph", "ES": "an endoscopy image",
    "XC": "a photograph", "SM": "a microscopy slide", "OP": "an ophthalmic photograph", "SR": "a structured report",
}
CHEST_BODY_PARTS = {"CHEST", "THORAX", "LUNG", "LUNGS", "TORSO", "CHEST_TO_PELVIS", "CHESTABDOMEN", "WHOLEBODY",
                    "THORAX_PA", "CHEST PA", "PORT CHEST", "TRUNK", "PA CHEST"}
LATERAL_VIEWS = {"LL", "RL", "LAT", "LATERAL", "LLD", "RLD", "LLO", "RLO", "XCC", "CC", "MLO"}
MAX_ASPECT = 2.5  # width/height or height/width; chest radiographs are close to square


@dataclass(frozen=True)
class LungPlausibility:
    """Limits on the segmented lung fields of the anatomy model (`anatomy-unet-v5`), set below what it
    draws on 370 development images (up to 40 per data folder, all frontal chest radiographs): total
    lung area 11.6 % of the image at least (13.3 % p1), two-lung mean fill of the bounding boxes 0.29 at
    least (0.38 p1). Its visible lungs (the heart is not lung) are smaller and less box-like than v4's
    (v4: 12.5 % and 0.41), hence the lower fill limit.

    This check is a second line behind the header and chest checks: of the readable non-chest DICOMs of
    ../shared/data/dicom it refuses 3 of 10 on its own (with v4 as with v5); those two refuse all of them
    (scripts/qa_check.py).
    """

    min_found_fraction: float = 0.03  # lungs together below this: no lung field was found at all
    min_lung_fraction: float = 0.01  # one lung below this counts as not found
    min_total_fraction: float = 0.10
    max_total_fraction: float = 0.75
    min_mean_fill: float = 0.28  # lungs fill their bounding boxes; blobs on other anatomy do not


def _fill(mask: np.ndarray, area: int) -> float:
    """Share of its bounding box a region of `area` pixels fills (row/column projections: a 3000 x 3000
    mask would take ~50 ms through np.nonzero)."""
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    box = (rows[-1] - rows[0] + 1) * (columns[-1] - columns[0] + 1)
    return float(area) / float(box)


def check_metadata(meta: ImageMetadata) -> QAVerdict:
    """Refuse from the header alone; accept means only 'not refused yet'."""
    checks: dict = {"modality": meta.modality, "body_part": meta.body_part, "view_position": meta.view_position}
    modality = (meta.modality or "").upper().strip()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        what = MODALITY_NAMES.get(modality, f"a {modality} image")
        return QAVerdict(False, f"this is {what}, not a chest radiograph; RadAssist reads frontal chest "
                                "radiographs only", checks)
    body = (meta.body_part or "").upper().strip()
    if body and body not in CHEST_BODY_PARTS:
        return QAVerdict(False, f"the image is labelled as body part '{meta.body_part}', not chest; RadAssist "
                                "reads frontal chest radiographs only", checks)
    view = (meta.view_position or "").upper().strip()
    if view in LATERAL_VIEWS:
        return QAVerdict(False, f"the image is a {meta.view_position} view; RadAssist reads frontal (PA/AP) "
                                "chest radiographs only", checks)
    rows, columns = meta.rows, meta.columns
    aspect = max(rows, columns) / max(1, min(rows, columns))
    checks["aspect"] = round(aspect, 3)
    if aspect > MAX_ASPECT:
        return QAVerdict(False, f"the image is {columns} x {rows} pixels, far from the shape of a chest "
                                "radiograph", checks)
    return QAVerdict(True, "header consistent with a chest radiograph", checks)


def lung_field_check(lung_labels: np.ndarray, limits: LungPlausibility = LungPlausibility()
                     ) -> tuple[bool, str, dict]:
    """Two lung fields of plausible size and shape, from the label mask (1 right, 2 left).

    A single lung found is not a refusal by itself (the segmentation misses a lung on some real
    radiographs with dense consolidation); the embedding check then decides.
    """
    total = lung_labels.size
    right, left = lung_labels == 1, lung_labels == 2
    areas = (int(np.count_nonzero(right)), int(np.count_nonzero(left)))
    fractions = (areas[0] / total, areas[1] / total)
    measured = {"right_lung_fraction": round(fractions[0], 4), "left_lung_fraction": round(fractions[1], 4)}
    if sum(fractions) < limits.min_found_fraction:
        return False, "no lung fields were found in the image", measured
    if sum(fractions) > limits.max_total_fraction:
        return False, "the image does not show lung fields surrounded by chest wall and mediastinum", measured
    if min(fractions) < limits.min_lung_fraction:
        return True, "only one lung field was found", measured
    mean_fill = (_fill(right, areas[0]) + _fill(left, areas[1])) / 2.0
    measured["lung_box_fill"] = round(mean_fill, 3)
    if sum(fractions) < limits.min_total_fraction or mean_fill < limits.min_mean_fill:
        return False, "the regions found do not have the size and shape of lung fields", measured
    return True, "two lung fields found", measured


def embedding_distance(embedding: np.ndarray, ood: OodReference) -> float:
    """Scaled distance of an embedding to the training distribution (statistics from the model card)."""
    mean = np.asarray(ood.mean, dtype=np.float32)
    scale = np.asarray(ood.scale, dtype=np.float32)
    z = (np.asarray(embedding, dtype=np.float32).ravel() - mean) / np.maximum(scale, 1e-6)
    return float(np.sqrt(np.mean(z * z)))


@dataclass(frozen=True)
class ChestCheck:
    """What the chest check says of a film: the QA verdict (its checks carry the numbers for the JSON output),
    and the two outputs the validated-domain verdict uses."""

    verdict: QAVerdict
    mirrored: bool  # looks mirrored left to right: read, with a notice
    pediatric_probability: float  # the age estimate used when the header gives no age


def check_chest(image: Radiograph, task: str = "chest_check") -> ChestCheck:
    """The chest check model: refuses rotated, grey-inverted and non-chest images. Accepts when P(upright) +
    P(mirrored) reaches the card's accept_threshold (set so <= 0.5 % of validation films are refused); a film that
    looks mirrored is read, and `domain_verdict` gives it a notice."""
    from radassist.imaging.preprocess import preprocess
    from radassist.inference.engine import load_model

    model = load_model(task)
    card = model.card
    tensor = preprocess(image, card.preprocessing).tensor[None]
    outputs = model.run({card.input_name: tensor}, ["class_probabilities", "pediatric_probability"])
    probabilities = dict(zip(card.data["classes"], (float(p) for p in outputs["class_probabilities"][0]),
                             strict=True))
    chest = probabilities["upright"] + probabilities["mirrored"]
    mirrored = probabilities["mirrored"] > probabilities["upright"]
    pediatric = float(outputs["pediatric_probability"][0])
    checks = {"chest_check_chest": round(chest, 4), "chest_check_mirrored": mirrored,
              "chest_check_pediatric": round(pediatric, 4)}
    threshold = float(card.data["accept_threshold"])
    if chest >= threshold:
        return ChestCheck(QAVerdict(True, "upright frontal chest radiograph", checks), mirrored, pediatric)
    others = {name: p for name, p in probabilities.items() if name not in ("upright", "mirrored")}
    likeliest = max(others, key=others.__getitem__)
    checks["chest_check_class"] = likeliest
    reason = (f"{CHEST_CHECK_REASONS.get(likeliest, 'the image is not an upright chest radiograph')} (chest check: "
              f"upright {chest:.2f} < {threshold:.2f}); RadAssist reads upright frontal chest radiographs only")
    return ChestCheck(QAVerdict(False, reason, checks), mirrored, pediatric)


def check_image(lung_labels: np.ndarray) -> QAVerdict:
    """Image-based verdict from the lung fields: refuses when they are implausible."""
    lungs_ok, lungs_reason, checks = lung_field_check(lung_labels)
    if not lungs_ok:
        return QAVerdict(False, f"{lungs_reason}; this does not look like a frontal chest radiograph", checks)
    return QAVerdict(True, "frontal chest radiograph", checks)


def domain_verdict(meta: ImageMetadata, card: ModelCard, distance: float | None,
                   pediatric_probability: float | None, mirrored: bool = False) -> DomainVerdict:
    """Inside or outside the validated domain: the patient's age against the card's validated range, the
    embedding distance against the card's out-of-distribution threshold, and a film that looks mirrored."""
    notices = []
    if mirrored:
        notices.append("the image may be mirrored left to right (check the side marker: the sides of findings "
                       "may be reversed)")
    domain = card.validated_domain
    age = meta.patient_age_years
    if age is not None:
        age_group = AgeGroup.of_age(age)
        source = AgeSource.HEADER
        if domain.min_age_years is not None and age < domain.min_age_years:
            notices.append(f"patient age {age:.1f} years is below the validated range "
                           f"(from {domain.min_age_years:g} years)")
        if domain.max_age_years is not None and age > domain.max_age_years:
            notices.append(f"patient age {age:.0f} years is above the validated range "
                           f"(up to {domain.max_age_years:g} years)")
    elif pediatric_probability is not None:
        age_group = AgeGroup.PEDIATRIC if pediatric_probability >= 0.5 else AgeGroup.ADULT
        source = AgeSource.IMAGE_ESTIMATE
    else:
        age_group, source = None, AgeSource.UNKNOWN
    ood = card.ood
    if distance is not None and ood is not None and distance > ood.threshold:
        notices.append(f"the image is unlike the films the model was trained on (embedding distance "
                       f"{distance:.2f} > {ood.threshold:.2f})")
    notice = "; ".join(notices)
    return DomainVerdict(inside=not notices, notice=f"Outside validated use: {notice}." if notice else "",
                         age_group=age_group, age_source=source)
