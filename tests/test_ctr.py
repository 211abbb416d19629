"""Cardiothoracic ratio: the geometry on a synthetic mask with a known answer, on two real JSRT/SCR mask
sets (tests/data/anatomy, see SOURCE.md), and through the shipped anatomy model on the same two films."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radassist.image import ImageMetadata
from radassist.imaging.ctr import (
    AP_NOTE,
    UNKNOWN_VIEW_NOTE,
    HorizontalLine,
    ctr_from_masks,
    measure_ctr,
    widest_row,
    widest_thorax,
)
from radassist.imaging.lungs import LEFT_LUNG, RIGHT_LUNG, segment_lungs
from radassist.io import read_image
from radassist.results import MeasurementKind

ANATOMY = Path(__file__).parent / "data" / "anatomy"
FILMS = ("JPCNN004.png", "JPCLN006.png")  # JSRT validation films of the anatomy model (never trained on)


def meta(view: str | None) -> ImageMetadata:
    return ImageMetadata(source_path="x.png", file_format="PNG", rows=100, columns=120, view_position=view)


def synthetic() -> tuple[np.ndarray, np.ndarray]:
    """Lungs 100 columns apart at their widest (row 70), a heart 45 wide at its widest (row 60)."""
    labels = np.zeros((100, 120), dtype=np.uint8)
    labels[20:80, 10:50] = RIGHT_LUNG  # image left
    labels[20:80, 70:105] = LEFT_LUNG
    labels[70, 9] = RIGHT_LUNG  # the widest row: columns 9..109 -> 101 px
    labels[70, 70:110] = LEFT_LUNG
    heart = np.zeros((100, 120), dtype=bool)
    heart[40:75, 50:80] = True  # 30 px
    heart[60, 40:85] = True  # 45 px, the widest row
    return labels, heart


def test_synthetic_masks_give_the_known_ratio_and_lines():
    labels, heart = synthetic()
    ctr = ctr_from_masks(labels, heart, meta("PA"))
    assert ctr.heart == HorizontalLine(row=60, left=40, right=84)
    assert ctr.thorax == HorizontalLine(row=70, left=9, right=109)
    assert ctr.ratio == pytest.approx(45 / 101)
    assert ctr.note is None and ctr.cardiomegaly_on_pa is False
    measurement = ctr.as_measurement()
    assert measurement.kind is MeasurementKind.CARDIOTHORACIC_RATIO
    assert measurement.value == pytest.approx(45 / 101, abs=1e-4)
    assert measurement.points == ((60.0, 40.0), (60.0, 84.0), (70.0, 9.0), (70.0, 109.0))


def test_a_wide_heart_on_a_pa_film_is_cardiomegaly_but_an_ap_film_only_gets_the_caveat():
    labels, heart = synthetic()
    heart[50, 20:100] = True  # 80 of 101 px
    assert ctr_from_masks(labels, heart, meta("PA")).cardiomegaly_on_pa is True
    ap = ctr_from_masks(labels, heart, meta("AP"))
    assert ap.note == AP_NOTE and ap.cardiomegaly_on_pa is None
    assert ctr_from_masks(labels, heart, meta(None)).note == UNKNOWN_VIEW_NOTE


def test_thorax_counts_only_rows_that_hold_both_lungs():
    labels, heart = synthetic()
    labels[90, 0:60] = RIGHT_LUNG  # a wide row with one lung only: not a thoracic width
    assert widest_thorax(labels) == HorizontalLine(row=70, left=9, right=109)


def test_missing_heart_or_lung_gives_no_ratio():
    labels, heart = synthetic()
    assert ctr_from_masks(labels, np.zeros_like(heart)) is None
    assert ctr_from_masks(np.where(labels == LEFT_LUNG, 0, labels).astype(np.uint8), heart) is None
    assert widest_row(np.zeros((4, 4), dtype=bool)) is None


def mask(organ: str, name: str) -> np.ndarray:
    return np.asarray(Image.open(ANATOMY / "masks" / organ / name).convert("L")) > 127


def truth(name: str) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros(mask("heart", name).shape, dtype=np.uint8)
    labels[mask("right_lung", name)] = RIGHT_LUNG
    labels[mask("left_lung", name)] = LEFT_LUNG
    return labels, mask("heart", name)


def slow_ctr(labels: np.ndarray, heart: np.ndarray) -> float:
    """The definition, written out row by row, to check the vectorised geometry."""
    heart_width = max((np.flatnonzero(row)[-1] - np.flatnonzero(row)[0] + 1) for row in heart if row.any())
    thorax_width = max(
        np.flatnonzero(row == LEFT_LUNG)[-1] - np.flatnonzero(row == RIGHT_LUNG)[0] + 1
        for row in labels if (row == LEFT_LUNG).any() and (row == RIGHT_LUNG).any())
    return heart_width / thorax_width


@pytest.mark.parametrize("name", FILMS)
def test_real_scr_masks_give_the_row_by_row_ratio(name):
    labels, heart = truth(name)
    ctr = ctr_from_masks(labels, heart, meta("PA"))
    assert ctr.ratio == pytest.approx(slow_ctr(labels, heart))
    assert 0.3 < ctr.ratio < 0.65  # adult PA films
    assert heart[ctr.heart.row, ctr.heart.left] and heart[ctr.heart.row, ctr.heart.right]
    assert labels[ctr.thorax.row, ctr.thorax.left] == RIGHT_LUNG
    assert labels[ctr.thorax.row, ctr.thorax.right] == LEFT_LUNG


@pytest.mark.parametrize("name", FILMS)
def test_model_ctr_is_close_to_the_ctr_of_the_radiologist_masks(name):
    image = read_image(ANATOMY / "images" / name)
    ctr = measure_ctr(segment_lungs(image), image.meta)
    assert ctr is not None
    assert abs(ctr.ratio - ctr_from_masks(*truth(name)).ratio) <= 0.04
    assert ctr.note == UNKNOWN_VIEW_NOTE  # a PNG carries no view position


def test_read_json_carries_the_ratio_its_line_end_points_and_the_caveat():
    import json

    from radassist.pipeline.result_json import result_to_dict
    from radassist.results import QAVerdict, ReadResult

    labels, heart = synthetic()
    ctr = ctr_from_masks(labels, heart, meta("AP"))
    result = ReadResult(meta=meta("AP"), qa=QAVerdict(True, "ok"))
    result.measurements[MeasurementKind.CARDIOTHORACIC_RATIO] = ctr.as_measurement()
    shown = json.loads(json.dumps(result_to_dict(result)))["measurements"]["cardiothoracic_ratio"]
    assert shown["value"] == pytest.approx(45 / 101, abs=1e-4)
    assert shown["points_row_col"] == [[60.0, 40.0], [60.0, 84.0], [70.0, 9.0], [70.0, 109.0]]
    assert shown["note"] == AP_NOTE


def test_an_implausible_ratio_is_not_reported():
    from radassist.imaging.ctr import measure_ctr
    from radassist.imaging.lungs import LungFields, bounding_boxes

    labels = np.zeros((100, 100), dtype=np.uint8)
    labels[20:80, 10:45], labels[20:80, 55:90] = 1, 2  # thorax 80 px wide
    heart = np.zeros((100, 100), dtype=bool)
    heart[60:70, 48:53] = True  # 5 px: a ratio of 0.06 is a failed mask, not a small heart
    fields = LungFields(labels=labels, boxes=bounding_boxes(labels), heart=heart)
    assert measure_ctr(fields, None) is None
    heart[40:70, 30:70] = True  # 40 of 80 px: a plausible 0.5
    assert measure_ctr(fields, None).ratio == pytest.approx(0.5)


def test_a_line_through_freely_dragged_ends_is_horizontal_at_their_mean_row():
    assert HorizontalLine.through([(40.0, 33.0), (42.0, 18.0)]) == HorizontalLine(41, 18, 33)
    assert HorizontalLine.through([(10.4, 5.6), (10.4, 44.2)]) == HorizontalLine(10, 6, 44)
