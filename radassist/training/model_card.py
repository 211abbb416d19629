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
from radassist.training.datasets import CALIBRATION, TRAIN, VALIDATION
from radassist.training.labels import CONDITIONAL_ON, DISPLAY_NAMES, LABEL_AGE_GROUPS, LABELS, OUTSIDE_LUNGS

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
    "nih14": "NIH ChestX-ray14 (Wang et al. 2017): unrestricted use, citation and NIH Clinical Center "
             "acknowledgement requested",
    "jsrt": "JSRT / SCR terms: research and education use (Shiraishi et al. 2000; van Ginneken et al. 2006)",
    "covid_ieee8023": "per image (mostly not stated); COVID-19 Image Data Collection, Cohen et al. 2020",
}

# The weights inherit the most restrictive terms of the data they were learnt from.
MODEL_TERMS = ("Research and education use only, non-commercial: the weights were learnt from images under "
               "research-only (covidx, JSRT/SCR), non-commercial (CC BY-NC-SA images of covid_cxr_seg) and "
               "unstated terms. The Apache-2.0 licence of the RadAssist code does not extend to these weights. "
               "Cite the datasets listed under training.data.")

THRESHOLD_RULE = ("Youden's J (max sensitivity + specificity - 1) on the calibrated probabilities of the "
                  "calibration split, among thresholds keeping specificity >= 0.80 there")
ABNORMAL_THRESHOLD_RULE = ("the highest threshold keeping sensitivity >= 0.90 on the adult films with airspace "
                           "disease (pneumonia, COVID-19, consolidation) of the calibration split; sensitivity on "
                           "all adult abnormal films is in metrics.per_label.abnormal.by_age_group.adult")
CALIBRATION_RULE = ("Platt scaling per label on the calibration split (patients in neither training nor "
                    "validation): sigmoid((logit + shift) / temperature); the shift is folded into head.bias")
# What the model was validated on; input QA reports anything else as "outside validated use".
VALIDATED_DOMAIN = {
    "image_type": "frontal (PA/AP) chest radiographs: CR, DX and digitised film, upright orientation, not inverted",
    "age_groups": {"pediatric": "1-17 years (mostly 1-5 years: Guangzhou; NIH films under 18)",
                   "adult": "18 years and over"},
    "min_age_years": 1.0,
    "max_age_years": 100.0,
    "views": ["PA", "AP"],
}

LIMITS = [
    "Research use only; not a medical device and not clinically validated.",
    "Trained from scratch on about 2,700 images of small public sets. NIH ChestX-ray14 labels were mined from "
    "reports (noisy); NIH Pneumonia films are more often AP and No Finding films more often PA, so view can stand "
    "in for disease (see metrics.validation.per_label.*.by_view).",
    "viral_pattern is conditional: meaningful only on films with pneumonia, and learnt from children only.",
    "effusion, cardiomegaly, nodule_mass, pneumothorax, atelectasis and edema rest mostly on NIH ChestX-ray14 "
    "(report-mined labels, tens to a few hundred positives each): their CIs are wide.",
    "The centre square crop can cut off lateral lung edges of very wide films or the bases of very tall ones.",
    "Lines, tubes, bones and the mediastinum are not assessed.",
    "Frontal chest radiographs only; lateral views, other body parts, rotated or inverted images and "
    "non-radiographs are refused by input QA (see the chest-check model), and films outside the validated age "
    "range or embedding distribution carry an 'outside validated use' notice.",
]


def _trained_on(records, assignment: np.ndarray, targets: np.ndarray, j: int) -> dict:
    """Training images per source folder that carry this label (positives / negatives)."""
    counts: Counter = Counter()
    for index in np.flatnonzero(assignment == TRAIN):
        value = int(targets[index, j])
        if value >= 0:
            counts[(records[index].source, value)] += 1
    sources = sorted({source for source, _ in counts})
    return {source: {"positive": counts[(source, 1)], "negative": counts[(source, 0)]} for source in sources}


def build_card(config, onnx_path: Path, summary: dict) -> dict:
    records, assignment, targets, variant = (summary["records"], summary["assignment"], summary["targets"],
                                             summary["variant"])
    size = int(summary["spec"]["size"])
    labels = [{
        "id": label,
        "display_name": DISPLAY_NAMES[label],
        "threshold": round(float(variant.thresholds[j]), 6),
        "threshold_rule": ABNORMAL_THRESHOLD_RULE if label == "abnormal" else THRESHOLD_RULE,
        "conditional_on": CONDITIONAL_ON[label],
        "restrict_to_lungs": label not in OUTSIDE_LUNGS,
        "age_groups": list(LABEL_AGE_GROUPS.get(label, ())),
        "calibration": {"method": "platt", "temperature": round(float(variant.temperatures[j]), 6),
                        "logit_shift_folded_into_bias": round(float(variant.shifts[j]), 6)},
        "trained_on": _trained_on(records, assignment, targets, j),
    } for j, label in enumerate(LABELS)]
    sources = sorted({r.source for r in records})

    def files(split: str) -> list[str]:
        return sorted(r.key for r, s in zip(records, assignment, strict=True) if s == split)

    validation_files = files(VALIDATION)
    histories = summary["histories"]
    return {
        "model_id": config.model_id,
        "version": config.version,
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "size_bytes": onnx_path.stat().st_size,
        "task": "classification",
        "input": {"name": "image", "shape": ["N", 1, size, size], "dtype": "float32"},
        "outputs": {
            "probabilities": "[N, L] sigmoid((logits) / temperature), calibrated per label (Platt)",
            "logits": "[N, L] before temperature (the Platt shift is already in head.bias)",
            "cam": "[N, L, h, w] head.weight . feature_map + head.bias (mean over h, w equals logits); "
                   "covers the preprocessing crop_box",
            "embedding": "[N, D] pooled feature vector (input to the head; used for the ood check)",
        },
        "labels": labels,
        "preprocessing": summary["spec"],
        "temperature": [round(float(t), 6) for t in variant.temperatures],
        "calibration": CALIBRATION_RULE,
        "validated_domain": VALIDATED_DOMAIN,
        "metrics": {
            "split": "validation (patient-level, seeded; see training.split); CIs: bootstrap over patients",
            **summary["validation"],
            "onnx_vs_torch_max_abs_diff": summary["onnx_vs_torch_max_abs_diff"],
        },
        "ood": summary["ood"],
        "training": {
            "method": "radiomics-guided contrastive learning (Han et al., ISBI 2021): compact CNN from scratch, "
                      "masked weighted BCE over 10 labels + contrastive_weight x symmetric InfoNCE between the "
                      "image embedding and an MLP embedding of pyradiomics features of the same image (each lung "
                      "field; from salient_refresh_epoch on also the region the network's own `abnormal` CAM "
                      "marks); other batch images are negatives. Ablation: the same CNN, split and budget, "
                      "BCE only.",
            "data": [{"folder": s, "licence": DATA_LICENCES.get(s, "see the folder's SOURCE.md"),
                      "images": sum(r.source == s for r in records)} for s in sources],
            "radiomics": {"classes": ["firstorder", "glcm", "glrlm", "glszm", "shape2D"], "force2D": True,
                          "region": summary["region"], "lung_model_sha256": summary["lung_model_sha256"],
                          "features": len(summary["feature_names"]),
                          "salient_region": "abnormal CAM >= 0.5 x max, first order + GLCM",
                          "image": "the model's centre-square crop in [0, 1] at the model size"},
            "command": config.command,
            "wall_time_minutes": round(summary["seconds"]["total"] / 60.0, 1),
            "seconds": summary["seconds"],
            "budget": {"epochs": config.epochs, "batch_size": config.batch_size, "input_size": size,
                       "torch_threads": config.threads, "preprocess_workers": config.workers,
                       "cpu_minutes": round(summary["seconds"]["cpu_total"] / 60.0, 1),
                       "load_average_1_5_15_at_end": summary["load_average"],
                       "note": "fixed epochs, no early stopping; the ablation has the same epochs and batches; "
                               "wall time on a 2-core machine shared with other jobs"},
            "seed": config.seed,
            "hyperparameters": summary["config"],
            "history": histories.get("contrastive", []),
            "ablation_history": histories.get("ablation", []),
            "split": {"unit": "patient, merged across sources for near-identical images",
                      "validation_fraction": config.validation_fraction,
                      "calibration_fraction": config.calibration_fraction, "seed": config.seed,
                      "train_images": int((assignment == TRAIN).sum()),
                      "calibration_images": int((assignment == CALIBRATION).sum()),
                      "validation_images": len(validation_files),
                      "validation_files": validation_files},
        },
        "intended_use": INTENDED_USE,
        "model_terms": MODEL_TERMS,
        "limits": LIMITS,
    }


def _fmt(block: dict) -> str:
    low, high = block["auroc_ci95"]
    return f"{block['auroc']:.3f} ({low:.3f}-{high:.3f})"


def markdown(card: dict) -> str:
    """A short human-readable summary of the card."""
    metrics = card["metrics"]
    lines = [f"# {card['model_id']} {card['version']}", "",
             f"Intended use: **{card['intended_use']}**. Terms of the weights: {card['model_terms']}", "",
             f"File `{card['file']}` ({card['size_bytes'] / 1e6:.1f} MB), sha256 `{card['sha256']}`.", "",
             "## Labels (validation split, AUROC with bootstrap 95% CI over patients)", "",
             "| label | AUROC | threshold | sens / spec | ECE | n pos / neg | pixels 8x8 LR | ablation |",
             "|---|---|---|---|---|---|---|---|"]
    for label in card["labels"]:
        block = metrics["per_label"].get(label["id"], {})
        if "auroc" not in block:
            continue
        pixels = metrics["baselines"].get("pixels_8x8_logistic", {}).get(label["id"])
        ablation = metrics["baselines"].get("ablation", {}).get(label["id"])
        lines.append(f"| {label['id']} | {_fmt(block)} | {label['threshold']:.3f} | "
                     f"{block['sensitivity']:.2f} / {block['specificity']:.2f} | {block['ece']:.3f} | "
                     f"{block['n_positive']} / {block['n_negative']} | {_fmt(pixels) if pixels else '-'} | "
                     f"{_fmt(ablation) if ablation else '-'} |")
    rates = metrics["reading_room_rates"]
    normals, infected = rates["adult_normals_flagged_abnormal"], rates["adult_pneumonia_flagged_abnormal"]
    lines += ["", f"At the `abnormal` threshold {rates['threshold']:.3f}: adult normals flagged abnormal "
              f"{normals['rate']:.3f} ({normals['rate_ci95'][0]:.3f}-{normals['rate_ci95'][1]:.3f}, n {normals['n']}); "
              f"adult pneumonia / COVID-19 films flagged {infected['rate']:.3f} "
              f"({infected['rate_ci95'][0]:.3f}-{infected['rate_ci95'][1]:.3f}, n {infected['n']})."]
    training = card["training"]
    lines += ["", "## Training", "", f"Command: `{training['command']}`", "",
              f"Budget: {training['budget']['epochs']} epochs at {training['budget']['input_size']} px, "
              f"batch {training['budget']['batch_size']}, {training['budget']['torch_threads']} torch thread(s); "
              f"{training['budget']['cpu_minutes']} CPU minutes for the model and its ablation. "
              f"Wall time {training['wall_time_minutes']} min (load average at the end "
              f"{training['budget']['load_average_1_5_15_at_end']}), seed {training['seed']}, "
              f"{training['split']['train_images']} training / {training['split']['calibration_images']} calibration / "
              f"{training['split']['validation_images']} validation images. Radiomics region: "
              f"{training['radiomics']['region']}.", "",
              "Preprocessing: " + json.dumps(card["preprocessing"]), "", "Data:", ""]
    lines += [f"- `{d['folder']}` ({d['images']} images): {d['licence']}" for d in training["data"]]
    lines += ["", "## Limits", ""] + [f"- {limit}" for limit in card["limits"]]
    return "\n".join(lines) + "\n"


def write_card_files(out_dir: Path, card: dict) -> Path:
    card_path = out_dir / CARD_NAME
    card_path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    (out_dir / MARKDOWN_NAME).write_text(markdown(card), encoding="utf-8")
    return card_path
