"""The anatomy model's truth and evaluation (radassist.training.lungseg_data / lungseg_evaluate): the side
Dice sees laterality (a piece of the left lung labelled right leaves the union Dice perfect but lowers the
side Dice); covid_cxr_seg's lungs, drawn through the heart, are brought to the visible-lung convention with
its cardiomediastinal silhouette, whose lower part teaches the heart. Real JSRT/SCR masks
(tests/data/anatomy) and real covid_cxr_seg masks (tests/data/lungs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radassist.imaging.ctr import ctr_from_masks
from radassist.imaging.lungs import BACKGROUND, HEART, LEFT_LUNG, RIGHT_LUNG
from radassist.paths import models_dir
from radassist.training.lungseg_data import (
    HEART_ROW_SHARE,
    UNKNOWN_BACKGROUND,
    LungCase,
    lung_truth,
    read_mask,
    side_labels,
    sided_lung_truth,
    silhouette_parts,
)
from radassist.training.lungseg_evaluate import dice, evaluate, side_dice

ANATOMY = Path(__file__).parent / "data" / "anatomy"
LUNGS = Path(__file__).parent / "data" / "lungs"


def _covid_case(name: str) -> LungCase:
    return LungCase("covid_cxr_seg", LUNGS / "images" / name, LUNGS / "masks" / name, LUNGS / "masks_right" / name,
                    LUNGS / "masks_left" / name, f"covid_cxr_seg:{name}",
                    silhouette_mask=LUNGS / "masks_silhouette" / name)


def test_side_dice_sees_a_left_lung_piece_labelled_right():
    masks = ANATOMY / "masks"
    case = LungCase("jsrt", ANATOMY / "images" / "JPCLN006.png", masks / "right_lung" / "JPCLN006.png",
                    masks / "right_lung" / "JPCLN006.png", masks / "left_lung" / "JPCLN006.png", "jsrt:JPCLN006")
    truth = sided_lung_truth(case)
    assert side_dice(truth, truth) == 1.0
    swapped = truth.copy()
    left_rows = np.flatnonzero((truth == LEFT_LUNG).any(axis=1))
    lower_left = (truth == LEFT_LUNG) & (np.arange(truth.shape[0])[:, None] > np.median(left_rows))
    swapped[lower_left] = RIGHT_LUNG
    assert dice(swapped > 0, truth > 0) == 1.0  # the union cannot see it
    assert side_dice(swapped, truth) < 0.85
    assert side_dice(np.where(truth > 0, 3 - truth, 0), truth) == 0.0  # both sides swapped


def test_the_heart_is_the_silhouette_from_its_first_wide_row_down():
    silhouette = np.zeros((100, 80), dtype=bool)
    silhouette[10:50, 35:45] = True  # mediastinum: 10 wide
    silhouette[50:60, 30:50] = True  # 20 wide: below HEART_ROW_SHARE of the widest
    silhouette[60:90, 20:60] = True  # heart: 40 wide
    assert 20 / 40 < HEART_ROW_SHARE <= 30 / 40
    silhouette[70, 15:65] = True  # the widest row (50)
    heart, above = silhouette_parts(silhouette)
    assert not (heart & above).any() and ((heart | above) == silhouette).all()
    assert np.flatnonzero(heart.any(axis=1)).tolist() == list(range(60, 90))
    assert np.flatnonzero(above.any(axis=1)).tolist() == list(range(10, 60))
    empty = np.zeros((5, 5), dtype=bool)
    assert not any(part.any() for part in silhouette_parts(empty))


def test_covid_cxr_seg_lungs_lose_the_silhouette_and_its_lower_part_is_heart():
    for name in ("ARDSSevere.png", "X-ray_of_cyst_in_pneumocystis_pneumonia_1.png"):
        case = _covid_case(name)
        silhouette = read_mask(case.silhouette_mask)
        drawn = read_mask(case.right_mask) | read_mask(case.left_mask)
        assert (drawn & silhouette).sum() > 0.2 * silhouette.sum()  # drawn through the heart
        lungs = lung_truth(case)
        assert not (lungs & silhouette).any() and (lungs == (drawn & ~silhouette)).all()
        labels = side_labels(case)
        heart, above = silhouette_parts(silhouette)
        assert heart.any() and (labels[heart] == HEART).all() and (labels == HEART).sum() == heart.sum()
        assert (labels[above] == UNKNOWN_BACKGROUND).all()
        assert (labels[~silhouette & ~drawn] == BACKGROUND).all()  # the heart is never outside the silhouette
        assert ((labels == RIGHT_LUNG) | (labels == LEFT_LUNG)).sum() == lungs.sum()
        # the silhouette's widest row is the heart's: a plausible cardiothoracic ratio
        ratio = ctr_from_masks(sided_lung_truth(case), silhouette)
        assert ratio is not None and 0.35 < ratio.ratio < 0.75 and heart[ratio.heart.row].any()


def test_evaluation_scores_covid_cxr_seg_lungs_in_the_visible_lung_convention():
    from radassist.imaging.lungs import segment_lungs
    from radassist.io import read_image

    case = _covid_case("ARDSSevere.png")
    result = evaluate(models_dir() / "lungseg.card.json", [case], seed=1)
    fields = segment_lungs(read_image(case.image))
    assert result["dice"] == round(dice(fields.mask, lung_truth(case)), 4)
    assert result["dice"] != round(dice(fields.mask, read_mask(case.lung_mask)), 4)
    assert result["n_val_heart"] == 0  # a silhouette is not a heart mask
    measured = result["ctr_measured_share_by_source"]["covid_cxr_seg"]
    assert result["n_val_ctr_silhouette"] == measured == len(result["ctr_found_and_silhouette_per_image"])
