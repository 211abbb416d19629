"""The one dataset-to-label table: what each source says, what it leaves unknown, and the 3-way patient split."""

from __future__ import annotations

import numpy as np

from radassist.training.datasets import CALIBRATION, TRAIN, VALIDATION, patient_split, read_folders
from radassist.training.labels import LABELS, targets_for_row
from radassist.training.metrics import bootstrap_ci, fit_platt, paired_auroc_difference


def test_nih_rows_are_complete_for_every_finding():
    targets = targets_for_row({"labels": "Infiltration|Effusion"}, "nih14")
    assert targets["abnormal"] == 1 and targets["opacity"] == 1 and targets["effusion"] == 1
    assert targets["pneumothorax"] == 0 and targets["nodule_mass"] == 0 and targets["pneumonia"] == 0
    assert "viral_pattern" not in targets  # children's viral/bacterial subtype only


def test_a_covid_film_says_nothing_about_effusion_or_nodules():
    targets = targets_for_row({"labels": "COVID-19"}, "covid_hannover")
    assert targets == {"abnormal": 1, "pneumonia": 1, "opacity": 1}


def test_normal_films_are_negative_for_every_finding_and_not_for_the_subtype():
    targets = targets_for_row({"labels": "NORMAL"}, "pediatric_pneumonia")
    assert all(targets[label] == 0 for label in LABELS if label != "viral_pattern")
    assert "viral_pattern" not in targets


def test_jsrt_nodule_and_no_nodule():
    assert targets_for_row({"labels": "Nodule|malignant"}, "jsrt") == {"abnormal": 1, "nodule_mass": 1}
    assert targets_for_row({"labels": "No Finding"}, "jsrt")["nodule_mass"] == 0


def test_radiologist_masks_decide_opacity_effusion_and_pneumothorax():
    row = {"labels": "COVID-19", "mask_classes": "left_lung;right_lung;pleural_effusion"}
    targets = targets_for_row(row, "covid_cxr_seg")
    assert targets["opacity"] == 0 and targets["effusion"] == 1 and targets["pneumothorax"] == 0


def test_pediatric_subtype_only_on_pneumonia_films():
    assert targets_for_row({"labels": "PNEUMONIA", "subtype": "viral"}, "pediatric_pneumonia")["viral_pattern"] == 1
    assert "viral_pattern" not in targets_for_row({"labels": "NORMAL", "subtype": "viral"}, "pediatric_pneumonia")
    assert "viral_pattern" not in targets_for_row({"labels": "COVID-19"}, "covid_ieee8023")


def test_three_way_split_keeps_patients_whole_and_is_seeded(shared_data):
    records = read_folders([shared_data / "covid_hannover", shared_data / "jsrt"])
    groups = [r.patient for r in records]
    fractions = {VALIDATION: 0.15, CALIBRATION: 0.15}
    first = patient_split(records, groups, fractions, 7)
    assert first == patient_split(records, groups, fractions, 7)
    sides: dict[str, set] = {}
    for group, part in zip(groups, first, strict=True):
        sides.setdefault(group, set()).add(part)
    assert all(len(parts) == 1 for parts in sides.values())
    shares = {part: first.count(part) / len(first) for part in (TRAIN, CALIBRATION, VALIDATION)}
    assert 0.08 < shares[VALIDATION] < 0.25 and 0.08 < shares[CALIBRATION] < 0.25


def test_patient_bootstrap_is_wider_than_image_bootstrap_for_clustered_data():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(20), 10)  # 10 near-identical films per patient
    labels = np.repeat(rng.integers(0, 2, 20), 10)
    scores = labels * 0.3 + np.repeat(rng.normal(0, 0.3, 20), 10)
    low_i, high_i = bootstrap_ci(labels, scores, samples=300)
    low_p, high_p = bootstrap_ci(labels, scores, samples=300, groups=patients)
    assert high_p - low_p > 1.5 * (high_i - low_i)


def test_platt_recovers_a_known_miscalibration_and_paired_difference_is_zero_for_twins():
    rng = np.random.default_rng(1)
    true_logit = rng.normal(0, 2, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    temperature, shift = fit_platt(labels, 3.0 * true_logit - 1.5)  # over-confident and shifted
    assert abs(temperature - 3.0) < 0.3 and abs(shift - 1.5) < 0.3  # (3x - 1.5 + 1.5) / 3 = x
    same = paired_auroc_difference(labels, true_logit, true_logit, samples=50)
    assert same["difference"] == 0 and same["difference_ci95"] == [0.0, 0.0]
