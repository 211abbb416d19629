"""Localisation: the mirrored CAM and the lesion-weighted saliency on the shipped models, and the
localisation scoring (peak in lesion, pointing game, side agreement against a random point in the lungs)
on a real JSRT film with a recorded nodule (tests/data/anatomy, see SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radassist.explain.saliency import (
    SIDE_EVIDENCE_SHARE,
    evidence_side,
    gaussian_smoothed,
    lesion_weight,
    lesion_weighted,
    mirrored_cam,
    normalised_saliency,
    peak_location,
)
from radassist.imaging.lungs import segment_lungs
from radassist.imaging.preprocess import preprocess
from radassist.inference.engine import load_model
from radassist.io import read_image
from radassist.training.anatomy_localisation import LesionReference, score_image, summarise
from radassist.training.lungseg_data import nodule_disc
from radassist.vocabulary import Side

ANATOMY = Path(__file__).parent / "data" / "anatomy"
NODULE_FILM = ANATOMY / "images" / "JPCLN006.png"  # nodule centre (x 165, y 131), 20 px, right upper lobe


def classifier_cams(batch: np.ndarray) -> np.ndarray:
    session = load_model("classifier")
    return session.run({session.input_names[0]: batch}, ["cam"])["cam"]


@pytest.fixture(scope="module")
def tensor() -> np.ndarray:
    return preprocess(read_image(NODULE_FILM), load_model("classifier").card.data["preprocessing"]).tensor


def test_mirrored_cam_moves_with_the_image(tensor):
    """Mirroring the input mirrors the result exactly: what a lesion causes follows the lesion."""
    cam = classifier_cams(tensor[None])[0]
    mirrored_input = np.ascontiguousarray(tensor[:, :, ::-1])
    mirrored_cam_of_mirror = classifier_cams(mirrored_input[None])[0]
    result = mirrored_cam(classifier_cams, tensor, cam)
    result_of_mirror = mirrored_cam(classifier_cams, mirrored_input, mirrored_cam_of_mirror)
    assert result.shape == cam.shape
    np.testing.assert_allclose(result, result_of_mirror[:, :, ::-1], atol=1e-4)
    assert not np.allclose(result, cam, atol=1e-3)  # it did change the map


def test_lesion_weighting_moves_the_peak_to_the_lesion_and_keeps_a_peak_without_one():
    raw = np.zeros((60, 80), dtype=np.float32)
    raw[10, 70] = 1.0  # the CAM's own peak, far from the lesion
    raw[40:50, 10:20] = 0.6  # weaker evidence over the lesion
    lesion = np.zeros((30, 40), dtype=np.float32)  # coarser grid over the same image
    lesion[20:25, 5:10] = 0.9
    weight = lesion_weight(lesion, raw.shape)
    assert weight.shape == raw.shape
    assert peak_location(normalised_saliency(lesion_weighted(raw, weight), None))[1] < 25
    flat = lesion_weighted(raw, lesion_weight(np.zeros((30, 40), dtype=np.float32), raw.shape))
    assert peak_location(normalised_saliency(flat, None)) == (10, 70)  # no lesion anywhere: the CAM decides


def test_scoring_a_real_nodule_film_gives_bounded_scores_and_a_random_baseline():
    reference = LesionReference("jsrt", NODULE_FILM, "jsrt:JPCLN006", "nodule",
                                lambda shape: nodule_disc(shape, 165.0, 131.0, 20.0))
    score = score_image(reference, "classifier", "lungseg", occlusion=False)
    assert score is not None
    assert score.label in [label["id"] for label in load_model("classifier").card.data["labels"]]
    # the nodule is small: a random lung point rarely lands in it, and it lies in one lung (the right)
    assert 0.0 < score.hit["random"] < 0.01
    assert score.hit["random"] < score.pointing["random"] < 0.1
    assert set(score.side) >= {"random", "cam", "mirrored_cam", "lesion"} and 0.3 < score.side["random"] < 0.7
    assert set(score.side_named) == set(score.side) and score.side_named["random"] == 1.0
    assert all(score.side[method] <= score.side_named[method] for method in score.side if method != "random")
    for metric in (score.hit, score.pointing, score.side):
        assert all(metric[method] in (0.0, 1.0) for method in metric if method != "random")
    summary = summarise([score, score], seed=1)
    assert summary["images"] == 2 and summary["patients"] == 1
    entry = summary["metrics"]["pointing"]["cam"]
    assert entry["minus_random"]["mean"] == pytest.approx(score.pointing["cam"] - score.pointing["random"], abs=1e-3)
    when_named = summary["metrics"]["side_when_named"]["lesion"]
    assert when_named["n"] == 2 * int(score.side_named["lesion"])  # only the images where a side was named


def test_the_lesion_output_peaks_on_the_nodule_side_of_an_unseen_film():
    fields = segment_lungs(read_image(NODULE_FILM))
    rows, columns = fields.lesion.shape
    row, column = np.unravel_index(int(np.argmax(fields.lesion)), fields.lesion.shape)
    assert column < columns / 2  # the patient's right lung, on the image's left


def test_smoothing_puts_the_peak_on_a_blob_rather_than_on_one_noisy_cell():
    plane = np.zeros((100, 100), dtype=np.float32)
    plane[10, 90] = 1.0  # one hot cell
    plane[60:72, 20:32] = 0.6  # a weaker, lesion-sized blob
    smoothed = gaussian_smoothed(plane, 0.02)
    assert smoothed.shape == plane.shape and smoothed.dtype == np.float32
    row, column = peak_location(smoothed)
    assert 60 <= row < 72 and 20 <= column < 32
    assert smoothed.sum() == pytest.approx(plane.sum(), rel=0.05)  # a blur, not a gain (edges renormalised)


def test_a_side_is_named_only_when_it_holds_most_of_the_evidence():
    labels = np.zeros((40, 40), dtype=np.uint8)
    labels[5:35, 3:18] = Side.RIGHT.lung_mask_value  # the patient's right, on the image's left
    labels[5:35, 22:37] = Side.LEFT.lung_mask_value
    evidence = np.zeros((40, 40), dtype=np.float32)
    evidence[10:20, 5:10] = 1.0
    assert evidence_side(evidence, labels) is Side.RIGHT
    share = SIDE_EVIDENCE_SHARE - 0.05  # just under the share on the right: the rest on the left
    evidence[10:20, 25:30] = (1 - share) / share
    assert evidence_side(evidence, labels) is None
    evidence[10:20, 5:10] = 0.0
    assert evidence_side(evidence, labels) is Side.LEFT
    evidence[labels > 0] = 0.0
    evidence[0:3, :] = 1.0  # outside the lungs only: no evidence to name a side by
    assert evidence_side(evidence, labels) is None


def test_an_even_haze_over_a_larger_right_lung_names_no_side():
    labels = np.zeros((40, 40), dtype=np.uint8)
    labels[2:38, 2:19] = Side.RIGHT.lung_mask_value  # four times the area of the left lung
    labels[20:29, 22:39] = Side.LEFT.lung_mask_value
    haze = np.where(labels > 0, 0.5, 0.0).astype(np.float32)
    assert evidence_side(haze, labels) is None  # 80 % of the total lies on the right, but not more per pixel
    haze[labels == Side.LEFT.lung_mask_value] = 2.0
    assert evidence_side(haze, labels) is Side.LEFT
