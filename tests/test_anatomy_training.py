"""Training the anatomy model (radassist.training.lungseg_*): which images teach the lesion output only, what
mirroring teaches, and the zone scores. Real torch, real nih14 and covid_ieee8023 labels; the full run is
`python -m radassist.training.lungseg_train`."""

from __future__ import annotations

import csv

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from radassist.imaging.lungs import LEFT_LUNG, RIGHT_LUNG  # noqa: E402
from radassist.training.lungseg_data import find_lesion_negatives, find_zone_scored_films  # noqa: E402
from radassist.training.lungseg_net import (  # noqa: E402
    CLASSES,
    augment,
    lung_zones,
    segmentation_loss,
    zone_loss,
    zones_as_seen,
)
from radassist.training.lungseg_train import train  # noqa: E402

SIZE = 64


def test_lesion_negatives_are_adult_normal_films_of_patients_without_a_box(shared_data):
    """The NIH boxes are the outside check of the localisation: no image of a boxed patient is trained on."""
    negatives = find_lesion_negatives(shared_data)
    rows = {row["file"]: row for row in csv.DictReader(open(shared_data / "nih14" / "labels.csv", encoding="utf-8"))}
    boxed = {row["file"] for row in csv.DictReader(open(shared_data / "nih14" / "boxes.csv", encoding="utf-8"))}
    boxed_patients = {rows[file]["patient_id"] for file in boxed}
    picked = [rows[f"images/{path.name}"] for path in negatives]
    assert len(picked) > 300 and all(path.exists() for path in negatives)
    assert all(row["labels"] == "No Finding" and int(row["age"]) >= 18 for row in picked)
    assert not {row["patient_id"] for row in picked} & boxed_patients


def test_zone_scored_films_are_the_brixia_scored_covid_ieee8023_films(shared_data):
    films = find_zone_scored_films(shared_data)
    rows = {row["file"]: row for row in csv.DictReader(open(shared_data / "covid_ieee8023" / "labels.csv",
                                                            encoding="utf-8"))}
    assert len(films) == sum(1 for row in rows.values() if row["brixia_score"]) > 50
    for film in films:
        score = [int(value) for value in rows[f"images/{film.image.name}"]["brixia_score"].split(",")]
        assert film.image.exists() and list(film.zones) == score[:6] and sum(film.zones) == score[6]
        assert film.patient == f"covid_ieee8023:{rows[f'images/{film.image.name}']['patient_id']}"


def _anatomy_logits(count: int) -> torch.Tensor:
    """Anatomy logits of two rectangular lungs: the right lung (image left) rows 10-53, columns 6-27, the
    left lung rows 10-53, columns 36-57."""
    logits = torch.full((count, CLASSES, SIZE, SIZE), -5.0)
    logits[:, 0] = 5.0
    logits[:, RIGHT_LUNG, 10:54, 6:28] = 10.0
    logits[:, LEFT_LUNG, 10:54, 36:58] = 10.0
    return logits


def test_zones_are_thirds_of_each_lung_without_the_bands_at_their_borders():
    zones = lung_zones(_anatomy_logits(1))[0]
    assert not (zones.sum(dim=0) > 1).any()  # disjoint
    for index, (first_row, last_row) in enumerate([(10, 22), (27, 37), (42, 53)]):  # 44 rows: thirds of ~14.7
        for zone, columns in ((index, (6, 27)), (3 + index, (36, 57))):  # right lung first, as Brixia A-C
            rows = torch.nonzero(zones[zone].any(dim=1)).flatten()
            used = torch.nonzero(zones[zone].any(dim=0)).flatten()
            assert (int(rows[0]), int(rows[-1])) == (first_row, last_row)
            assert (int(used[0]), int(used[-1])) == columns
    assert not lung_zones(torch.zeros(1, CLASSES, SIZE, SIZE).index_fill_(1, torch.tensor([0]), 9.0)).any()


def test_zone_loss_wants_lesion_in_affected_zones_and_none_in_clear_ones():
    zones = lung_zones(_anatomy_logits(1))
    in_right_lower = torch.full((1, SIZE, SIZE), -4.0)
    in_right_lower[0, 44:52, 8:26] = 4.0
    right_lower_affected = torch.tensor([[0, 0, 3, 0, 0, 0]])
    left_lower_affected = torch.tensor([[0, 0, 0, 0, 0, 3]])
    assert zone_loss(in_right_lower, zones, right_lower_affected) < 0.1
    assert zone_loss(in_right_lower, zones, left_lower_affected) > 1.0
    interstitial_only = torch.tensor([[0, 0, 1, 0, 0, 0]])  # a zone scored 1 teaches nothing
    assert zone_loss(in_right_lower, zones, interstitial_only) < 0.1
    # one gradient step moves lesion evidence out of the clear zones and into the affected one
    logits = torch.zeros(1, SIZE, SIZE, requires_grad=True)
    zone_loss(logits, zones, right_lower_affected).backward()
    assert bool((logits.grad[zones[:, 0] | zones[:, 3]] > 0).all())  # clear: the logit should go down
    assert bool((logits.grad[zones[:, 2]] <= 0).all()) and bool((logits.grad[zones[:, 2]] < 0).any())
    assert bool((logits.grad[~zones.any(dim=1)] == 0).all())  # outside the zones: nothing taught
    # a mirrored film: the lung the network labels right is the patient's left
    assert zones_as_seen(left_lower_affected, torch.tensor([True])).tolist() == right_lower_affected.tolist()
    assert zones_as_seen(left_lower_affected, torch.tensor([False])).tolist() == left_lower_affected.tolist()


def _batch(count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Synthetic films: right lung (image left) and left lung labelled, a lesion in the image's left third."""
    images = torch.zeros(count, 1, SIZE, SIZE)
    targets = torch.zeros(count, SIZE, SIZE, dtype=torch.long)
    targets[:, 10:54, 6:28] = RIGHT_LUNG
    targets[:, 10:54, 36:58] = LEFT_LUNG
    lesions = torch.zeros(count, SIZE, SIZE)
    lesions[:, 24:36, 10:20] = 1.0
    images[:, 0] = 0.3 + 0.5 * lesions
    return images, targets, lesions


def test_a_mirrored_film_teaches_the_lesion_output_where_the_lesion_went_and_no_anatomy():
    images, targets, lesions = _batch(64)
    out_images, out_targets, out_lesions, teaches_anatomy = augment(
        images, targets, lesions.clone(), torch.Generator().manual_seed(3))
    mirrored = ~teaches_anatomy
    assert 16 < int(mirrored.sum()) < 48  # about half
    lesion_column = (out_lesions.sum(dim=1) * torch.arange(SIZE)).sum(dim=1) / out_lesions.sum(dim=(1, 2))
    assert bool((lesion_column[mirrored] > SIZE / 2).all())  # the lesion moved to the image's right ...
    assert bool((lesion_column[~mirrored] < SIZE / 2).all())
    bright_column = out_images[:, 0].sum(dim=1).argmax(dim=1)  # ... with the image's bright blob
    assert bool(((bright_column > SIZE / 2) == mirrored).all())
    right_lung_column = ((out_targets == RIGHT_LUNG).float().sum(dim=1) * torch.arange(SIZE)).sum(dim=1) / (
        (out_targets == RIGHT_LUNG).sum(dim=(1, 2)))
    assert bool((right_lung_column < SIZE / 2).all())  # the anatomy target was never mirrored


def test_the_anatomy_loss_ignores_the_images_that_do_not_teach_it():
    _, targets, lesions = _batch(4)
    logits = torch.randn(4, 5, SIZE, SIZE)
    some = torch.tensor([True, False, True, False])
    swapped = targets.clone()
    swapped[1] = torch.where(targets[1] == RIGHT_LUNG, LEFT_LUNG, torch.where(targets[1] == LEFT_LUNG, RIGHT_LUNG, 0))
    assert segmentation_loss(logits, targets, lesions, some) == segmentation_loss(logits, swapped, lesions, some)
    assert segmentation_loss(logits, targets, lesions, ~some) != segmentation_loss(logits, swapped, lesions, ~some)
    nothing = torch.zeros(4, dtype=torch.bool)
    assert segmentation_loss(logits, targets, lesions, nothing) == segmentation_loss(logits, swapped, lesions, nothing)


def test_training_mixes_annotated_films_lesion_negatives_and_zone_scored_films(tmp_path):
    images, targets, lesions = (array.numpy() for array in _batch(6))
    negatives = np.full((5, SIZE, SIZE), 0.4, dtype=np.float32)
    zone_films = np.full((4, SIZE, SIZE), 0.3, dtype=np.float32)  # clear films (the zone loss: tests above)
    zone_scores = np.tile(np.array([[0, 0, 0, 0, 1, 0]]), (4, 1))
    validation = (images[:2, 0], targets[:2].astype(np.uint8), lesions[:2])
    checkpoint = tmp_path / "checkpoint.pt"
    net = train(images[:, 0], targets.astype(np.uint8), lesions, negatives, validation, steps=100, batch_size=3,
                negatives_per_batch=2, learning_rate=3e-3, seed=5, checkpoint=checkpoint,
                zone_scored=(zone_films, zone_scores), zone_films_per_batch=2)
    assert torch.load(checkpoint, weights_only=False)["step"] == 100
    with torch.no_grad():
        lesion = torch.sigmoid(net(torch.from_numpy(np.stack([images[0, 0], negatives[0]])[:, None]))[:, -1])
    assert float(lesion[0][lesions[0] > 0].mean()) > 0.5  # the lesion of an annotated film
    assert float(lesion[1].max()) < 0.5  # nothing on a negative

