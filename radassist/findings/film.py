"""What the draft report knows about a film besides the model outputs: the patient's age group, whether QA
placed the film inside the validated domain, and how far a lung finding spreads (one lung or both).

Each answer is None (or "not inside") when the read does not say: the report then leaves out what depends on it
(age-restricted diagnoses, the normal statement, spread-restricted patterns) instead of guessing.

The domain verdict is QA's (`QAVerdict.domain`: inside, notice, age group from the header or the chest check's
estimate). A read without one is inside when QA accepted it and measured its embedding distance within the card's
threshold (the only domain measure such a read has).
"""

from __future__ import annotations

import math

import numpy as np

from radassist.findings.knowledge import Spread
from radassist.results import AgeGroup, DomainVerdict, QAVerdict, ReadResult

SPREAD_GRID = 128  # px: the lung mask and a saliency map are compared at about this size
SALIENT = 0.5  # a saliency value at or above this (of the map's peak, 1.0) is part of the finding
ONE_LUNG_BELOW = 0.10  # the other lung holds less than this share of the salient lung area: focal (one lung)
BOTH_LUNGS_FROM = 0.25  # each lung holds at least this share: bilateral; in between: not said


def age_group_of(result: ReadResult) -> AgeGroup | None:
    """QA's age group (the DICOM age, else the chest check's estimate); for a read without a domain verdict, the
    DICOM age; else None."""
    if result.qa.domain is not None:
        return result.qa.domain.age_group
    age = result.meta.patient_age_years
    if age is not None:
        return AgeGroup.of_age(age)
    return None


def domain_of(qa: QAVerdict) -> DomainVerdict:
    """QA's domain verdict; for a read without one (QA before the image checks, a constructed read), inside when
    QA accepted the film and its embedding distance is within the card's threshold."""
    if not qa.accepted:
        return DomainVerdict(False, f"Not read: {qa.reason}.")
    if qa.domain is not None:
        return qa.domain
    distance, limit = qa.checks.get("embedding_distance"), qa.checks.get("embedding_threshold")
    if distance is None or limit is None:
        return DomainVerdict(False, "Outside validated use: no domain check was made.")
    if float(distance) > float(limit):
        return DomainVerdict(False, "Outside validated use: the image is unlike the films the model was trained on "
                                    f"(embedding distance {float(distance):.2f} > {float(limit):.2f}).")
    return DomainVerdict(True, "")


def spread_of(result: ReadResult, label: str) -> Spread | None:
    """FOCAL when the finding's salient area lies in one lung, BILATERAL when both lungs hold a fair share of it,
    None when the read has no lung mask or map for it, nothing salient falls in a lung, or the split is in between."""
    mask = result.lung_mask
    if mask is None or label not in result.saliency:
        return None
    step = max(1, math.ceil(max(mask.shape) / SPREAD_GRID))
    lungs = mask[::step, ::step]
    maps = result.saliency
    if hasattr(maps, "at_shape"):  # SaliencyMaps: resampled from its working copy, never via the image size
        heat = maps.at_shape(label, lungs.shape)
    else:
        from radassist.imaging.resample import resize_plane

        heat = resize_plane(np.asarray(maps[label], dtype=np.float32), *lungs.shape)
    salient = heat >= SALIENT
    right, left = int(np.count_nonzero(salient & (lungs == 1))), int(np.count_nonzero(salient & (lungs == 2)))
    if right + left == 0:
        return None
    minority = min(right, left) / (right + left)
    if minority < ONE_LUNG_BELOW:
        return Spread.FOCAL
    if minority >= BOTH_LUNGS_FROM:
        return Spread.BILATERAL
    return None
