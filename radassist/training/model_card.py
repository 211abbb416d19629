"""The model card (JSON, read by every host) and its short Markdown twin, written by `radassist train`.

Everything in the card is measured by the training run that produced the ONNX file, except the data
licences, which are copied from each folder's SOURCE.md (table below).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from radassist.inference.engine import sha256_of
from radassist.training.datasets import VALIDATION
from radassist.training.labels import DISPLAY_NAMES, LABELS

CARD_NAME = "cxr_classifier.card.json"
MARKDOWN_NAME = "cxr_classifier.md"
INTENDED_USE = "research use, not a medical device"

# folder -> licence as its SOURCE.md states it
DATA_LICENCES = {
    "pediatric_pneumonia": "CC BY 4.0 (stated by a third party); Kermany et al. 2018, doi 10.17632/rscbjbr9sj.2",
    "covid_cxr_seg": "mixed per image (CC BY-NC-SA 4.0 / CC BY 4.0 / not stated); "
                     "GeneralBlockchain covid-19-chest-xray-segmentations-dataset",
    "covid_hannover": "CC BY 3.0; Hannover Medical School, doi 10.6084/m9.figshare.12275009",
    "covidx_actualmed": "research use only (repository README); Actualmed COVID-19 Chest X-ray Dataset Initiative",
    "covidx_figure1": "research use only (repository README); Figure 1 COVID-19 Chest X-ray Dataset Initiative",
    "nih_cxr14_64px": "not stated (NIH ChestX-ray14, Wang et al. 2017); 64 px, smoke tests only",
    "covid_qu_ex_sample": "not stated (COVID-QU-Ex)",
}

THRESHOLD_RULE = ("Youden's J (max sensitivity + specificity - 1) on the calibrated probabilities of the "
                  "validation split")

LIMITS = [
    "Research use only; not a medical device and not clinically validated.",
    "Trained from scratch on about a thousand images: pediatric (Guangzhou, Kermany 2018) for pneumonia and "
    "the viral/bacterial pattern; adult images are few and almost all COVID-19 positive.",
    "viral_pattern is conditional: it is meaningful only on images with pneumonia, and it was learnt from "
    "children only.",
    "opacity on adult films rests on very few adult negatives (No finding images); its adult figures have "
    "wide confidence intervals. Adult positives are mostly AP portable films with lines and ECG leads, adult "
    "negatives mostly PA: view/equipment can stand in for disease on adult films.",
    "Shortcut risks in the training data: pediatric image shape (removed by the centre square crop, see "
    "metrics.shape_only_baseline), burned-in side markers and text, AP vs PA view (covidx_actualmed).",
    "The centre square crop can cut off lateral lung edges of very wide films or the bases of very tall ones.",
    "Validation figures come from a patient-level split of the development data; temperature and "
    "thresholds were fitted on the same validation split, so its ECE is optimistic.",
    "Frontal chest radiographs only; lateral views, other body parts and non-radiographs are out of "
    "distribution (see ood).",
]


def _trained_on(records, assignment: np.ndarray, targets: np.ndarray, j: int) -> dict:
    """Training images per source folder that carry this label (positives / negatives)."""
    counts: Counter = Counter()
    for index in np.flatnonzero(assignment != VALIDATION):
        value = int(targets[index, j])
        if value >= 0:
            counts[(records[index].source, value)] += 1
    sources = sorted({source for source, _ in counts})
    return {source: {"positive": counts[(source, 1)], "negative": counts[(source, 0)]} for source in sources}


def build_card(config, onnx_path: Path, summary: dict) -> dict:
    records, assignment, targets = summary["records"], summary["assignment"], summary["targets"]
    size = int(summary["spec"]["size"])
    labels = [{
        "id": label,
        "display_name": DISPLAY_NAMES[label],
        "threshold": round(float(summary["thresholds"][j]), 6),
        "threshold_rule": THRESHOLD_RULE,
        "conditional_on": summary["conditional_on"][label],
        "trained_on": _trained_on(records, assignment, targets, j),
    } for j, label in enumerate(LABELS)]
    sources = sorted({r.source for r in records})
    validation_files = sorted(r.key for r, split in zip(records, assignment, strict=True) if split == VALIDATION)
    return {
        "model_id": config.model_id,
        "version": config.version,
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "size_bytes": onnx_path.stat().st_size,
        "task": "classification",
        "input": {"name": "image", "shape": ["N", 1, size, size], "dtype": "float32"},
        "outputs": {
            "probabilities": "[N, L] sigmoid(logits / temperature), calibrated per label",
            "logits": "[N, L] before temperature",
            "cam": "[N, L, h, w] head.weight . feature_map + head.bias (mean over h, w equals logits); "
                   "covers the preprocessing crop_box",
            "embedding": "[N, D] pooled feature vector (input to the head; used for the ood check)",
        },
        "labels": labels,
        "preprocessing": summary["spec"],
        "temperature": [round(float(t), 6) for t in summary["temperatures"]],
        "metrics": {
            "split": "validation (patient-level, seeded; see training.split)",
            "per_label": summary["metrics"],
            "shape_only_baseline": summary["shape_baseline"],
            "adult_vs_pediatric_within_class": summary["domain_check"],
            "onnx_vs_torch_max_abs_diff": summary["onnx_vs_torch_max_abs_diff"],
        },
        "ood": summary["ood"],
        "training": {
            "method": "radiomics-guided contrastive learning (Han et al., ISBI 2021): compact CNN from scratch, "
                      "weighted BCE + contrastive_weight x symmetric InfoNCE between the image embedding and an "
                      "MLP embedding of pyradiomics features of the same image (other batch images are "
                      "negatives)" if config.contrastive_weight > 0 else
                      "ablation: the same CNN, split and budget with the weighted BCE only (no contrastive term)",
            "data": [{"folder": s, "licence": DATA_LICENCES.get(s, "see the folder's SOURCE.md"),
                      "images": sum(r.source == s for r in records)} for s in sources],
            "radiomics": {"classes": ["firstorder", "glcm", "glrlm", "glszm", "shape2D"], "force2D": True,
                          "region": summary["region"], "features": len(summary["feature_names"]),
                          "image": "the model's centre-square crop in [0, 1] at the model size"},
            "command": config.command,
            "wall_time_minutes": round(summary["seconds"]["total"] / 60.0, 1),
            "seconds": summary["seconds"],
            "budget": {"epochs": config.epochs, "batch_size": config.batch_size, "input_size": size,
                       "torch_threads": config.threads, "preprocess_workers": config.workers,
                       "cpu_minutes": round(summary["seconds"]["cpu_total"] / 60.0, 1),
                       "load_average_1_5_15_at_end": summary["load_average"],
                       "note": "fixed epochs, no early stopping; wall time on a 2-core machine shared with other "
                               "jobs (see load average), CPU minutes are what the run itself used"},
            "seed": config.seed,
            "hyperparameters": summary["config"],
            "history": summary["history"],
            "split": {"unit": "patient, merged across sources for near-identical images",
                      "validation_fraction": config.validation_fraction, "seed": config.seed,
                      "train_images": int((assignment != VALIDATION).sum()),
                      "validation_images": len(validation_files),
                      "validation_files": validation_files},
        },
        "intended_use": INTENDED_USE,
        "limits": LIMITS,
    }


def _fmt(block: dict) -> str:
    low, high = block["auroc_ci95"]
    return f"{block['auroc']:.3f} ({low:.3f}-{high:.3f})"


def markdown(card: dict) -> str:
    """A short human-readable summary of the card."""
    lines = [f"# {card['model_id']} {card['version']}", "",
             f"Intended use: **{card['intended_use']}**.", "",
             f"File `{card['file']}` ({card['size_bytes'] / 1e6:.1f} MB), sha256 `{card['sha256']}`.", "",
             "## Labels (validation split, AUROC with bootstrap 95% CI)", "",
             "| label | AUROC | threshold | sens / spec | ECE | n pos / neg | shape-only baseline |",
             "|---|---|---|---|---|---|---|"]
    for label in card["labels"]:
        block = card["metrics"]["per_label"].get(label["id"], {})
        if not block:
            continue
        base = card["metrics"]["shape_only_baseline"].get(label["id"])
        lines.append(f"| {label['id']} | {_fmt(block)} | {label['threshold']:.3f} | "
                     f"{block['sensitivity']:.2f} / {block['specificity']:.2f} | {block['ece']:.3f} | "
                     f"{block['n_positive']} / {block['n_negative']} | {_fmt(base) if base else '-'} |")
    comparison = card["metrics"].get("ablation_comparison")
    if comparison:
        lines += ["", "## Contrastive vs ablation (same split and budget)", "",
                  "| label | contrastive | ablation (no InfoNCE) |", "|---|---|---|"]
        for label, row in comparison["per_label"].items():
            lines.append(f"| {label} | {_fmt(row['contrastive'])} | {_fmt(row['ablation'])} |")
    training = card["training"]
    lines += ["", "## Training", "", f"Command: `{training['command']}`", "",
              f"Budget: {training['budget']['epochs']} epochs at {training['budget']['input_size']} px, "
              f"batch {training['budget']['batch_size']}, {training['budget']['torch_threads']} torch thread(s); "
              f"{training['budget']['cpu_minutes']} CPU minutes. "
              f"Wall time {training['wall_time_minutes']} min (load average at the end "
              f"{training['budget']['load_average_1_5_15_at_end']}), seed {training['seed']}, "
              f"{training['split']['train_images']} training / {training['split']['validation_images']} "
              f"validation images. Radiomics region: {training['radiomics']['region']}.", "",
              "Preprocessing: " + json.dumps(card["preprocessing"]), "", "Data:", ""]
    lines += [f"- `{d['folder']}` ({d['images']} images): {d['licence']}" for d in training["data"]]
    lines += ["", "## Limits", ""] + [f"- {limit}" for limit in card["limits"]]
    return "\n".join(lines) + "\n"


def write_card_files(out_dir: Path, card: dict) -> Path:
    card_path = out_dir / CARD_NAME
    card_path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    (out_dir / MARKDOWN_NAME).write_text(markdown(card), encoding="utf-8")
    return card_path


def add_ablation_comparison(card: dict, ablation_card: dict) -> None:
    """Put the ablation's validation AUROCs beside this model's (same split is checked)."""
    if ablation_card["training"]["split"]["validation_files"] != card["training"]["split"]["validation_files"]:
        raise ValueError("the ablation was validated on a different split; the comparison would be meaningless")
    per_label = {}
    for label, block in card["metrics"]["per_label"].items():
        other = ablation_card["metrics"]["per_label"].get(label)
        if block and other:
            keep = ("auroc", "auroc_ci95", "ece", "n_positive", "n_negative")
            per_label[label] = {"contrastive": {k: block[k] for k in keep}, "ablation": {k: other[k] for k in keep}}
    card["metrics"]["ablation_comparison"] = {
        "ablation_model": f"{ablation_card['model_id']} {ablation_card['version']}",
        "ablation_wall_time_minutes": ablation_card["training"]["wall_time_minutes"],
        "per_label": per_label,
    }
