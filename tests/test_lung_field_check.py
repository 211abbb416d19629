"""The lung-field plausibility check of input QA (radassist.imaging.qa.lung_field_check): two lung fields of
chest-film size that fill their boxes pass; blobs, slivers and empty masks are refused. Synthetic label
masks for the limits, the shipped anatomy model on real films for what it draws."""

from __future__ import annotations

import numpy as np
import pytest

from radassist.imaging.lungs import LEFT_LUNG, RIGHT_LUNG, segment_lungs
from radassist.imaging.qa import LungPlausibility, lung_field_check
from radassist.io import read_image
from radassist.paths import resources_dir

LIMITS = LungPlausibility()


def _two_lungs(rows: np.ndarray) -> np.ndarray:
    """Two lungs in a 100 x 100 image, each 40 pixels wide on the given rows, in boxes of rows 10-89 (one
    pixel on row 89 keeps the box's size): the fill of each box is len(rows) / 80 (+ that pixel)."""
    labels = np.zeros((100, 100), dtype=np.uint8)
    for label, left in ((RIGHT_LUNG, 6), (LEFT_LUNG, 54)):
        labels[np.ix_(rows, np.arange(left, left + 40))] = label
        labels[89, left + 39] = label
    return labels


def test_lungs_that_fill_their_boxes_pass_and_scattered_blobs_do_not():
    ok, reason, measured = lung_field_check(_two_lungs(np.arange(10, 90)))
    assert ok and reason == "two lung fields found" and measured["lung_box_fill"] == 1.0
    assert lung_field_check(_two_lungs(np.arange(10, 50)))[0]  # fill 0.5
    stripes = _two_lungs(np.arange(10, 90, 4))  # every fourth row: fill 0.25, below the limit
    assert np.count_nonzero(stripes) / stripes.size >= LIMITS.min_total_fraction  # only the fill can refuse
    ok, reason, measured = lung_field_check(stripes)
    assert not ok and reason == "the regions found do not have the size and shape of lung fields"
    assert measured["lung_box_fill"] < LIMITS.min_mean_fill < 0.3


def test_too_little_or_too_much_lung_is_refused_and_one_lung_is_not():
    empty = np.zeros((100, 100), dtype=np.uint8)
    assert lung_field_check(empty)[:2] == (False, "no lung fields were found in the image")
    everything = np.full((100, 100), RIGHT_LUNG, dtype=np.uint8)
    everything[:, 50:] = LEFT_LUNG
    assert not lung_field_check(everything)[0]
    one = _two_lungs(np.arange(10, 90))
    one[one == LEFT_LUNG] = 0
    assert lung_field_check(one)[:2] == (True, "only one lung field was found")


@pytest.mark.parametrize("name", ["adult_covid19_hannover.png", "nih_cxr14_no_finding.dcm"])
def test_the_shipped_model_draws_plausible_lung_fields_on_the_bundled_adult_films(name):
    fields = segment_lungs(read_image(resources_dir() / "samples" / name))
    ok, reason, measured = lung_field_check(fields.labels)
    assert ok and reason == "two lung fields found", measured
