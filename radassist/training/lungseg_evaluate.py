"""Score the anatomy model the way it will be used: the runtime path (read_image -> ONNX -> post-processing)
at each image's own size: Dice of the binary lung mask (right ∪ left) against the annotated lungs (in the
visible-lung convention, lungseg_data.sided_lung_truth), Dice of each side (right lung, left lung) where
the sides are annotated, Dice of the heart on the images with a heart mask (jsrt), the CTR error against
those masks and against covid_cxr_seg's cardiomediastinal silhouette, and how often a read measures a CTR
at all. The side Dice is the one that sees laterality: a piece of the left lung labelled right costs the
union Dice nothing.

Run alone:  .venv/bin/python -m radassist.training.lungseg_evaluate --card models/lungseg.card.json
            --data /work/shared/data   (scores the card's recorded validation images)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from radassist.imaging.ctr import ctr_from_masks, measure_ctr
from radassist.imaging.lungs import LEFT_LUNG, RIGHT_LUNG, segment_lungs
from radassist.io import read_image
from radassist.training.lungseg_data import LungCase, find_cases, lung_truth, read_mask, sided_lung_truth

BOOTSTRAP_RESAMPLES = 2000


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """2|A∩B| / (|A|+|B|) of two boolean masks; two empty masks agree perfectly."""
    total = int(predicted.sum()) + int(truth.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(predicted, truth).sum()) / total


def bootstrap_mean_ci(values: list[float], groups: list[str], seed: int,
                      resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """Percentile 95 % CI of the mean image value, resampling patients (with all their images) with
    replacement: several films of one patient are not independent evidence."""
    data = np.asarray(values, dtype=np.float64)
    patients = sorted(set(groups))
    members = [np.flatnonzero(np.asarray(groups) == patient) for patient in patients]
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for index in range(resamples):
        chosen = np.concatenate([members[i] for i in rng.integers(0, len(patients), len(patients))])
        means[index] = data[chosen].mean()
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def side_dice(labels: np.ndarray, truth: np.ndarray) -> float:
    """Mean of the right-lung and the left-lung Dice of two label images (0 / RIGHT_LUNG / LEFT_LUNG)."""
    return (dice(labels == RIGHT_LUNG, truth == RIGHT_LUNG) + dice(labels == LEFT_LUNG, truth == LEFT_LUNG)) / 2


def _summary(per_image: dict[str, float], cases: list[LungCase], seed: int) -> dict:
    values = list(per_image.values())
    patients = {case.name: case.patient for case in cases}
    low, high = bootstrap_mean_ci(values, [patients[name] for name in per_image], seed)
    return {"mean": round(float(np.mean(values)), 4), "ci95": [round(low, 4), round(high, 4)],
            "median": round(float(np.median(values)), 4), "min": round(float(np.min(values)), 4),
            "n": len(values), "n_patients": len({patients[name] for name in per_image})}


def _mean_by_source(per_image: dict[str, float], cases: list[LungCase]) -> dict[str, float]:
    """Per-image values (keyed by case name) averaged per source."""
    return {source: round(float(np.mean([value for name, value in per_image.items()
                                         if name.startswith(source + "/")])), 4)
            for source in sorted({case.source for case in cases})}


def evaluate(card_path: Path, cases: list[LungCase], seed: int) -> dict:
    """Per-image lung, side and heart Dice, their means with bootstrap CIs over patients, per-source means
    and the per-image runtime."""
    segment_lungs(read_image(cases[0].image), str(card_path))  # build the session outside the timing
    lungs: dict[str, float] = {}
    sides: dict[str, float] = {}
    heart: dict[str, float] = {}
    ctr_error: dict[str, float] = {}
    ctr_pairs: dict[str, tuple[float, float]] = {}
    silhouette_error: dict[str, float] = {}
    silhouette_pairs: dict[str, tuple[float, float]] = {}
    measured: dict[str, float] = {}  # 1 where the read gives a CTR
    milliseconds: list[float] = []
    for case in cases:
        image = read_image(case.image)
        start = time.perf_counter()
        fields = segment_lungs(image, str(card_path))
        milliseconds.append(1000.0 * (time.perf_counter() - start))
        sided = sided_lung_truth(case) if case.right_mask is not None and case.left_mask is not None else None
        lungs[case.name] = round(dice(fields.mask, sided > 0 if sided is not None else lung_truth(case)), 4)
        found = measure_ctr(fields, image.meta)
        measured[case.name] = float(found is not None)
        if sided is None:
            continue
        sides[case.name] = round(side_dice(fields.labels, sided), 4)
        if case.heart_mask is not None and fields.heart is not None:
            heart_truth = read_mask(case.heart_mask)
            heart[case.name] = round(dice(fields.heart, heart_truth), 4)
            truth = ctr_from_masks(sided, heart_truth)
            if truth is not None and found is not None:
                ctr_pairs[case.name] = (round(found.ratio, 4), round(truth.ratio, 4))
                ctr_error[case.name] = round(abs(found.ratio - truth.ratio), 4)
        if case.silhouette_mask is not None:  # its widest row is the heart's: a CTR, though no heart Dice
            truth = ctr_from_masks(sided, read_mask(case.silhouette_mask))
            if truth is not None and found is not None:
                silhouette_pairs[case.name] = (round(found.ratio, 4), round(truth.ratio, 4))
                silhouette_error[case.name] = round(abs(found.ratio - truth.ratio), 4)
    lung_summary = _summary(lungs, cases, seed)
    side_summary = _summary(sides, cases, seed) if sides else None
    heart_summary = _summary(heart, cases, seed) if heart else None
    ctr_summary = _summary(ctr_error, cases, seed) if ctr_error else None
    silhouette_summary = _summary(silhouette_error, cases, seed) if silhouette_error else None
    return {
        "dice": lung_summary["mean"],
        "dice_ci95": lung_summary["ci95"],
        "dice_median": lung_summary["median"],
        "dice_min": lung_summary["min"],
        "n_val": lung_summary["n"],
        "n_val_patients": lung_summary["n_patients"],
        "dice_by_source": _mean_by_source(lungs, cases),
        "side_dice": side_summary["mean"] if side_summary else None,
        "side_dice_ci95": side_summary["ci95"] if side_summary else None,
        "side_dice_min": side_summary["min"] if side_summary else None,
        "n_val_side": len(sides),
        "heart_dice": heart_summary["mean"] if heart_summary else None,
        "heart_dice_ci95": heart_summary["ci95"] if heart_summary else None,
        "heart_dice_median": heart_summary["median"] if heart_summary else None,
        "heart_dice_min": heart_summary["min"] if heart_summary else None,
        "n_val_heart": len(heart),
        "ctr_mean_absolute_error": ctr_summary["mean"] if ctr_summary else None,
        "ctr_mean_absolute_error_ci95": ctr_summary["ci95"] if ctr_summary else None,
        "ctr_absolute_error_max": max(ctr_error.values()) if ctr_error else None,
        "n_val_ctr": len(ctr_error),
        "ctr_silhouette_mean_absolute_error": silhouette_summary["mean"] if silhouette_summary else None,
        "ctr_silhouette_mean_absolute_error_ci95": silhouette_summary["ci95"] if silhouette_summary else None,
        "n_val_ctr_silhouette": len(silhouette_error),
        "ctr_measured_share_by_source": _mean_by_source(measured, cases),
        "ctr_found_and_true_per_image": ctr_pairs,
        "ctr_found_and_silhouette_per_image": silhouette_pairs,
        "dice_per_image": lungs,
        "side_dice_per_image": sides,
        "heart_dice_per_image": heart,
        "definition": "Dice at the image's own size, runtime path (read_image, model_input, ONNX, "
                      "post-processing), mean over validation images: `dice` of the binary lung mask "
                      "(right ∪ left), `side_dice` the mean of the right-lung and the left-lung Dice (images with "
                      "both sides annotated), `heart_dice` of the heart on the images with a heart mask (jsrt); "
                      "CTR error: |CTR of the model's masks - CTR of the SCR masks| (imaging.ctr) on those images; "
                      "silhouette CTR error: the same against the widest row of covid_cxr_seg's cardiomediastinal "
                      "silhouette over its lungs' widest row (on images where the read measures a CTR); CTR measured "
                      "share: validation images where the read gives a CTR (a heart and both lungs found, ratio "
                      "plausible); lungs in the visible-lung convention (lungseg_data.sided_lung_truth); "
                      f"95 % CI: percentile bootstrap over patients, {BOOTSTRAP_RESAMPLES} resamples",
        "runtime_ms_per_image": {
            "median": round(float(np.median(milliseconds)), 1),
            "max": round(float(np.max(milliseconds)), 1),
            "what": "segment_lungs on an already read image (preprocessing + ONNX + post-processing), "
                    "CPU, session reused",
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--card", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="folder holding jsrt/, covid_cxr_seg/ etc.")
    parser.add_argument("--update", action="store_true",
                        help="write the metrics into the card and regenerate the Markdown note beside it")
    args = parser.parse_args(argv)
    card = json.loads(args.card.read_text(encoding="utf-8"))
    wanted = set(card["training"]["validation_images"])
    cases = [case for case in find_cases(args.data) if case.name in wanted]
    result = evaluate(args.card, cases, int(card["training"]["seed"]))
    if args.update:
        from radassist.training.lungseg_train import write_model_note

        card["metrics"] = result
        args.card.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        write_model_note(args.card.with_name(args.card.name.replace(".card.json", ".md")), card)
    shown = {key: value for key, value in result.items() if not key.endswith("per_image")}
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
