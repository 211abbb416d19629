"""The anatomy model's evaluation (radassist.training.lungseg_evaluate) sees laterality: a piece of the left
lung labelled right leaves the union Dice perfect but lowers the side Dice. Real JSRT/SCR masks
(tests/data/anatomy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radassist.imaging.lungs import LEFT_LUNG, RIGHT_LUNG
from radassist.training.lungseg_data import LungCase
from radassist.training.lungseg_evaluate import dice, side_dice, truth_labels

ANATOMY = Path(__file__).parent / "data" / "anatomy"


def test_side_dice_sees_a_left_lung_piece_labelled_right():
    masks = ANATOMY / "masks"
    case = LungCase("jsrt", ANATOMY / "images" / "JPCLN006.png", masks / "right_lung" / "JPCLN006.png",
                    masks / "right_lung" / "JPCLN006.png", masks / "left_lung" / "JPCLN006.png", "jsrt:JPCLN006")
    truth = truth_labels(case)
    assert side_dice(truth, truth) == 1.0
    swapped = truth.copy()
    left_rows = np.flatnonzero((truth == LEFT_LUNG).any(axis=1))
    lower_left = (truth == LEFT_LUNG) & (np.arange(truth.shape[0])[:, None] > np.median(left_rows))
    swapped[lower_left] = RIGHT_LUNG
    assert dice(swapped > 0, truth > 0) == 1.0  # the union cannot see it
    assert side_dice(swapped, truth) < 0.85
    assert side_dice(np.where(truth > 0, 3 - truth, 0), truth) == 0.0  # both sides swapped
