"""Train the chest check (input QA): orientation / inversion / not-a-chest, plus a pediatric-vs-adult estimate.

Reproduced by (wall time in models/chest_check.md; the front-end is radassist/cli/train_chest_check.py):
    radassist train-chest-check --data ../shared/data/<every labelled folder> --out models

Every labelled image of the folders gives six samples (upright, rotated 90/180/270, mirrored, inverted; see
chest_check_data), plus crops, pydicom's non-chest test images and procedural limb/pelvis radiographs as "not a
chest". Patients are split by a seeded hash (validation 15 %). The card holds the refusal threshold: the
image is accepted only when P(upright) + P(mirrored) >= threshold, chosen so that at most 0.5 % of the validation
upright films would be refused; mirroring gives a notice, not a refusal (the side marker decides).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SIZE = 64
VALIDATION_PERCENT = 15
SYNTHETIC_PER_CLASS_SHARE = 0.5  # synthetic + crops + pydicom images: about half of one chest class in count
MAX_FALSE_REFUSAL = 0.005
MIN_CROP_SIDE = 48  # crops are taken from images at least 4x this side (a crop keeps >= this many pixels)
CARD_NAME = "chest_check.card.json"
MODEL_TERMS = ("Research and education use only, non-commercial: learnt from the same data folders as the "
               "classifier (see its card for each folder's terms) and from pydicom's test images (MIT licence).")


def is_validation(patient: str, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % 100 < VALIDATION_PERCENT


def build_samples(folders: list[Path], seed: int) -> dict[str, np.ndarray]:
    """x [N, 1, S, S] float16, y [N] class, pediatric [N] (-1 unknown), validation [N] bool."""
    from tqdm import tqdm

    from radassist.imaging.preprocess import default_spec
    from radassist.io import read_image
    from radassist.training.chest_check_data import (
        ChestCheckClass,
        pydicom_non_chest_images,
        random_crop,
        sample_tensor,
        synthetic_bone_radiograph,
        transformed,
        with_pixels,
    )
    from radassist.training.datasets import read_labels_csv

    spec = default_spec(SIZE)
    rng = np.random.default_rng(seed)
    xs, ys, pediatric, validation = [], [], [], []
    records = [r for folder in folders for r in read_labels_csv(folder / "labels.csv")]
    template = None
    for record in tqdm(records, desc="chest check samples", unit="img"):
        try:
            image = read_image(record.path)
        except Exception as exc:  # noqa: BLE001  (an unreadable training image is skipped, and said)
            log.warning("skipped %s: %s", record.key, exc)
            continue
        template = template or image
        held_out = is_validation(record.patient, seed)
        child = 1 if record.domain == "pediatric" else 0
        for kind in list(ChestCheckClass)[:-1]:
            xs.append(sample_tensor(with_pixels(image, transformed(image.pixels, kind)), spec))
            ys.append(int(kind))
            pediatric.append(child if kind == ChestCheckClass.UPRIGHT else -1)
            validation.append(held_out)
        if min(image.shape) >= 4 * MIN_CROP_SIDE and rng.random() < SYNTHETIC_PER_CLASS_SHARE / 2:
            xs.append(sample_tensor(with_pixels(image, random_crop(image.pixels, rng)), spec))
            ys.append(int(ChestCheckClass.NOT_CHEST))
            pediatric.append(-1)
            validation.append(held_out)
    per_class = ys.count(int(ChestCheckClass.UPRIGHT))
    others = [p for p in pydicom_non_chest_images()]
    for index in range(int(per_class * SYNTHETIC_PER_CLASS_SHARE / 2)):
        if index % 3 == 0 and others:
            pixels = others[index // 3 % len(others)]
            pixels = np.rot90(pixels, int(rng.integers(0, 4)))
            pixels = random_crop(pixels, rng) if min(pixels.shape) >= 4 * MIN_CROP_SIDE and rng.random() < 0.5 else pixels
        else:
            pixels = synthetic_bone_radiograph(rng)
            pixels = pixels[:, ::-1] if rng.random() < 0.5 else pixels
            pixels = (1.0 - pixels) if rng.random() < 0.2 else pixels
        xs.append(sample_tensor(with_pixels(template, np.ascontiguousarray(pixels)), spec))
        ys.append(int(ChestCheckClass.NOT_CHEST))
        pediatric.append(-1)
        validation.append(index % 7 == 0)
    return {"x": np.stack(xs), "y": np.array(ys, dtype=np.int64), "pediatric": np.array(pediatric, dtype=np.int64),
            "validation": np.array(validation, dtype=bool)}


def _network(classes: int):
    import torch
    from torch import nn

    class ChestCheckNet(nn.Module):
        """Four stride-2 convolution blocks, pooled; a softmax head over the classes and a pediatric logit."""

        def __init__(self) -> None:
            super().__init__()
            layers, channels = [], 1
            for width in (16, 32, 64, 96):
                layers += [nn.Conv2d(channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                           nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                channels = width
            self.features = nn.Sequential(*layers)
            self.classes = nn.Linear(channels, classes)
            self.pediatric = nn.Linear(channels, 1)

        def forward(self, image: torch.Tensor):
            embedding = self.features(image).mean(dim=(2, 3))
            return (torch.softmax(self.classes(embedding), dim=1), torch.sigmoid(self.pediatric(embedding))[:, 0],
                    embedding)

    return ChestCheckNet()


def _augment(x, generator):
    """Small shifts and contrast changes; never a flip or rotation (those are the classes)."""
    import torch

    shift = torch.randint(-3, 4, (2,), generator=generator)
    x = torch.roll(x, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
    gain = 1.0 + 0.15 * (torch.rand(x.shape[0], 1, 1, 1, generator=generator) * 2 - 1)
    return x * gain


def fit(samples: dict[str, np.ndarray], epochs: int, seed: int):
    import torch
    import torch.nn.functional as F

    from radassist.training.chest_check_data import ChestCheckClass

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = _network(len(ChestCheckClass))
    train_index = np.flatnonzero(~samples["validation"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * (len(train_index) // 64)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        started, total = time.time(), 0.0
        order = rng.permutation(train_index)
        for b in range(len(order) // 64):
            index = np.sort(order[b * 64:(b + 1) * 64])
            x = _augment(torch.from_numpy(samples["x"][index].astype(np.float32)), generator)
            probabilities, pediatric, _ = model(x)
            loss = F.nll_loss(torch.log(probabilities.clamp_min(1e-7)), torch.from_numpy(samples["y"][index]))
            known = torch.from_numpy(samples["pediatric"][index] >= 0)
            if known.any():
                target = torch.from_numpy(samples["pediatric"][index]).float()
                loss = loss + F.binary_cross_entropy(pediatric[known].clamp(1e-6, 1 - 1e-6), target[known])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
        history.append({"epoch": epoch + 1, "loss": round(total / max(1, len(order) // 64), 4),
                        "seconds": round(time.time() - started, 1)})
        log.info("chest check epoch %s", json.dumps(history[-1]))
    return model.eval(), history


def predict(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    outputs, pediatric = [], []
    with torch.no_grad():
        for start in range(0, len(x), 256):
            probabilities, child, _ = model(torch.from_numpy(x[start:start + 256].astype(np.float32)))
            outputs.append(probabilities.numpy())
            pediatric.append(child.numpy())
    return np.concatenate(outputs), np.concatenate(pediatric)


def chest_score(probabilities: np.ndarray) -> np.ndarray:
    """P(upright) + P(mirrored): a chest film the right way up. Mirroring is not refused: real films are mirrored
    now and then (and dextrocardia exists), so the side marker decides; the read shows a notice instead."""
    from radassist.training.chest_check_data import ChestCheckClass

    return probabilities[:, ChestCheckClass.UPRIGHT] + probabilities[:, ChestCheckClass.MIRRORED]


def accept_threshold(chest_scores: np.ndarray) -> float:
    """The highest chest-score threshold that refuses at most MAX_FALSE_REFUSAL of real upright films."""
    return float(np.quantile(chest_scores, MAX_FALSE_REFUSAL))


def markdown(card: dict) -> str:
    """The short human-readable card."""
    refused = card["metrics"]["refused_at_threshold"]
    lines = [f"# {card['model_id']} {card['version']}", "", f"Intended use: **{card['intended_use']}**. "
             f"Terms of the weights: {card['model_terms']}", "",
             f"File `{card['file']}` ({card['size_bytes'] / 1e6:.2f} MB), sha256 `{card['sha256']}`.", "",
             f"Input QA: {card['accept_rule']} (threshold {card['accept_threshold']}).", "",
             "| validation samples | n | refused |", "|---|---|---|"]
    lines += [f"| {kind} | {block['n']} | {block['refused']:.3f} |" for kind, block in refused.items()]
    lines += ["", f"Pediatric vs adult (upright films): AUROC {card['metrics']['pediatric_auroc']:.3f}.", "",
              f"Command: `{card['training']['command']}` ({card['training']['wall_time_minutes']} min).", "",
              "## Limits", ""] + [f"- {limit}" for limit in card["limits"]]
    return "\n".join(lines) + "\n"


def train_chest_check(data: list[Path], out: Path, *, epochs: int, seed: int, threads: int,
                      cache_dir: Path | None, command: str) -> dict:
    """Train, export `out`/chest_check.onnx and write its card (JSON and Markdown); returns the card."""
    import torch

    from radassist.inference.engine import sha256_of
    from radassist.training.chest_check_data import ChestCheckClass
    from radassist.training.metrics import auroc
    from radassist.training.model_card import DATA_LICENCES

    torch.set_num_threads(threads)
    started = time.time()
    cache = cache_dir / "chest_check_samples.npz" if cache_dir else None
    if cache and cache.is_file():
        samples = dict(np.load(cache))
    else:
        samples = build_samples(list(data), seed)
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, **samples)
    model, history = fit(samples, epochs, seed)
    validation = samples["validation"]
    probabilities, pediatric = predict(model, samples["x"][validation])
    y = samples["y"][validation]
    chest = chest_score(probabilities)
    threshold = accept_threshold(chest[y == ChestCheckClass.UPRIGHT])
    accepted = chest >= threshold
    refusal = {kind.name.lower(): {"n": int((y == kind).sum()), "refused": float(1 - accepted[y == kind].mean())}
               for kind in ChestCheckClass}
    known = samples["pediatric"][validation] >= 0
    pediatric_auroc = auroc(samples["pediatric"][validation][known], pediatric[known])

    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "chest_check.onnx"
    torch.onnx.export(model, (torch.zeros(2, 1, SIZE, SIZE),), str(onnx_path), input_names=["image"],
                      output_names=["class_probabilities", "pediatric_probability", "embedding"],
                      dynamic_axes={n: {0: "batch"} for n in ("image", "class_probabilities",
                                                               "pediatric_probability", "embedding")},
                      opset_version=18, dynamo=False)
    card = {
        "model_id": "radassist-chest-check", "version": "1.0.0", "file": onnx_path.name,
        "sha256": sha256_of(onnx_path), "size_bytes": onnx_path.stat().st_size, "task": "chest_check",
        "input": {"name": "image", "shape": ["N", 1, SIZE, SIZE], "dtype": "float32"},
        "classes": [kind.name.lower() for kind in ChestCheckClass],
        "outputs": {"class_probabilities": "[N, C] softmax over classes",
                    "pediatric_probability": "[N] P(child), an estimate used only when the header gives no age",
                    "embedding": "[N, D]"},
        "preprocessing": {"crop": "centre_square", "size": SIZE, "intensity": "normalized_for_model",
                          "resample": "bilinear_antialiased", "standardize": "per_image"},
        "accept_threshold": round(threshold, 6),
        "accept_rule": f"accepted when P(upright) + P(mirrored) >= accept_threshold: at most "
                       f"{MAX_FALSE_REFUSAL:.1%} of the validation upright films refused; an accepted film whose "
                       "P(mirrored) > P(upright) carries a 'may be mirrored' notice",
        "metrics": {"split": f"validation: {VALIDATION_PERCENT} % of patients by seeded hash; synthetic and "
                             "pydicom non-chest samples 1 in 7",
                    "refused_at_threshold": refusal, "pediatric_auroc": pediatric_auroc},
        "training": {"command": command, "epochs": epochs, "seed": seed, "history": history,
                     "samples": {kind.name.lower(): int((samples["y"] == kind).sum()) for kind in ChestCheckClass},
                     "wall_time_minutes": round((time.time() - started) / 60, 1),
                     "data": [{"folder": Path(f).name, "licence": DATA_LICENCES.get(Path(f).name, "see SOURCE.md")}
                              for f in data] + [
                         {"name": "pydicom", "licence": "MIT (pydicom's bundled test images)"},
                         {"name": "procedural limb and pelvis radiographs", "licence": "generated here"}]},
        "intended_use": "research use, not a medical device",
        "model_terms": MODEL_TERMS,
        "limits": ["No real limb, pelvis, skull or abdominal radiograph was available to learn 'not a chest' "
                   "from: procedural bone images and crops stand in. Measured on unseen real non-chest files "
                   "by `scripts/qa_check.py`."],
    }
    (out / CARD_NAME).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    (out / CARD_NAME.replace(".card.json", ".md")).write_text(markdown(card), encoding="utf-8")
    return card
