"""Training the anatomy model (radassist.training.lungseg_*): which images teach the lesion output only, and
what mirroring teaches. Real torch, real nih14 labels; the full run is `python -m radassist.training.lungseg_train`."""

from __future__ import annotations

import csv

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from radassist.imaging.lungs import LEFT_LUNG, RIGHT_LUNG  # noqa: E402
from radassist.training.lungseg_data import find_lesion_negatives  # noqa: E402
from radassist.training.lungseg_net import augment, segmentation_loss  # noqa: E402
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


def test_training_mixes_annotated_films_and_lesion_negatives(tmp_path):
    images, targets, lesions = (array.numpy() for array in _batch(6))
    negatives = np.full((5, SIZE, SIZE), 0.4, dtype=np.float32)
    validation = (images[:2, 0], targets[:2].astype(np.uint8), lesions[:2])
    checkpoint = tmp_path / "checkpoint.pt"
    net = train(images[:, 0], targets.astype(np.uint8), lesions, negatives, validation, steps=100, batch_size=3,
                negatives_per_batch=2, learning_rate=3e-3, seed=5, checkpoint=checkpoint)
    assert torch.load(checkpoint, weights_only=False)["step"] == 100
    with torch.no_grad():
        lesion = torch.sigmoid(net(torch.from_numpy(np.concatenate([images[:1, 0], negatives[:1]])[:, None]))[:, -1])
    assert float(lesion[0][lesions[0] > 0].mean()) > 0.5  # the lesion of an annotated film
    assert float(lesion[1].max()) < 0.5  # nothing on a negative
