"""Does the saliency peak find the lesion? Localisation of the shipped classifier's saliency, measured
against radiologist lesion references and against a random point in the lungs.

References (each as a boolean lesion region at the image's size):
- covid_cxr_seg: `masks_by_class/consolidation` ∪ `ground_glass_opacity` (radiologist masks);
- nih14: the NIH radiologist boxes (`boxes.csv`), except Cardiomegaly (a heart box, not a lung lesion);
- jsrt: the nodule centre, as a disc of the recorded nodule diameter.

Metrics per image, each against the same metric for a point drawn uniformly from the lung fields (its
exact expectation, not a sample):
- peak in lesion: the peak lies inside the lesion region;
- pointing game: the peak lies within 15 px of the lesion at a 512 px scale;
- side agreement: the side the read names is the lesion's side, on lesions with at least 80 % of their area
  on one side. The read names the peak's side (the side of the nearest lung) only when that side also holds
  `saliency.SIDE_EVIDENCE_SHARE` of the map's evidence density in the lungs, and no side otherwise; an image with no
  side named counts as a miss here, and "side named" / "side right when named" give the two parts.
Means with 95 % percentile-bootstrap CIs over patients (lungseg_evaluate.bootstrap_mean_ci), and the CI of
the mean paired difference method - random.

Saliency methods compared (all restricted to the lung envelope, as the read does):
- "cam": the classifier's CAM output (what a read shows);
- "mirrored_cam": the CAM averaged with the CAM of the mirrored input, mirrored back
  (`radassist.explain.saliency.mirrored_cam`);
- "occlusion": occlusion sensitivity, 8 x 8 patches (64 extra forward passes);
- "cam_x_lesion": the CAM weighted by the (smoothed) lesion output (`radassist.explain.saliency.lesion_weighted`);
- "lesion": the anatomy model's smoothed lesion output alone, no classifier (what a read shows for a finding
  in the lungs, `radassist.pipeline.read`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from radassist.explain import saliency as sal
from radassist.imaging.lungs import LEFT_LUNG, RIGHT_LUNG, nearest_side, segment_lungs
from radassist.imaging.preprocess import preprocess
from radassist.inference.engine import load_model
from radassist.io import read_image
from radassist.training.lungseg_data import CXR_SEG_LESIONS, csv_rows, nodule_disc
from radassist.training.lungseg_evaluate import bootstrap_mean_ci

POINTING_RADIUS_AT_512 = 15.0
UNILATERAL_FRACTION = 0.8
# Which classifier label speaks for a reference's finding, most specific first; the first the card has wins.
LABELS_FOR = {
    "opacity": ("opacity", "pneumonia", "abnormal"),
    "pneumonia": ("pneumonia", "opacity", "abnormal"),
    "atelectasis": ("atelectasis", "opacity", "abnormal"),
    "effusion": ("effusion", "opacity", "abnormal"),
    "nodule": ("nodule_mass", "opacity", "abnormal"),
    "pneumothorax": ("pneumothorax", "abnormal", "opacity"),
}
NIH_FINDINGS = {"Pneumonia": "pneumonia", "Infiltrate": "opacity", "Atelectasis": "atelectasis",
                "Effusion": "effusion", "Mass": "nodule", "Nodule": "nodule", "Pneumothorax": "pneumothorax"}
METHODS = ("cam", "mirrored_cam", "occlusion", "cam_x_lesion", "lesion")


@dataclass(frozen=True)
class LesionReference:
    source: str
    image: Path
    patient: str
    finding: str  # a LABELS_FOR key
    region: Callable[[tuple[int, int]], np.ndarray]  # image shape -> boolean lesion region

    @property
    def name(self) -> str:
        return f"{self.source}/{self.image.name}"


def _mask_union(paths: list[Path]) -> Callable[[tuple[int, int]], np.ndarray]:
    def region(shape: tuple[int, int]) -> np.ndarray:
        masks = [np.asarray(Image.open(path).convert("L")) > 127 for path in paths]
        return np.logical_or.reduce(masks).reshape(shape)
    return region


def _boxes(boxes: list[tuple[float, float, float, float]]) -> Callable[[tuple[int, int]], np.ndarray]:
    def region(shape: tuple[int, int]) -> np.ndarray:
        canvas = Image.new("1", (shape[1], shape[0]), 0)
        for x, y, w, h in boxes:
            ImageDraw.Draw(canvas).rectangle([x, y, x + w - 1, y + h - 1], fill=1)
        return np.asarray(canvas, dtype=bool)
    return region


def _disc(x: float, y: float, diameter: float) -> Callable[[tuple[int, int]], np.ndarray]:
    return lambda shape: nodule_disc(shape, x, y, diameter)


def find_references(data_root: Path) -> list[LesionReference]:
    references: list[LesionReference] = []
    seg = data_root / "covid_cxr_seg"
    for row in csv_rows(seg / "labels.csv"):
        stem = Path(row["file"]).name
        paths = [seg / "masks_by_class" / kind / stem for kind in CXR_SEG_LESIONS]
        paths = [path for path in paths if path.exists()]
        if paths:
            references.append(LesionReference("covid_cxr_seg", seg / row["file"], f"covid_cxr_seg:{row['patient_id']}",
                                              "opacity", _mask_union(paths)))
    nih = data_root / "nih14"
    patients = {row["file"]: row["patient_id"] for row in csv_rows(nih / "labels.csv")}
    boxes: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for row in csv_rows(nih / "boxes.csv"):
        if row["label"] in NIH_FINDINGS:
            boxes.setdefault((row["file"], NIH_FINDINGS[row["label"]]), []).append(
                tuple(float(row[key]) for key in ("x", "y", "w", "h")))  # type: ignore[arg-type]
    for (file, finding), drawn in boxes.items():
        references.append(LesionReference("nih14", nih / file, f"nih14:{patients[file]}", finding, _boxes(drawn)))
    jsrt = data_root / "jsrt"
    for row in csv_rows(jsrt / "labels.csv"):
        if row["nodule_x"]:
            references.append(LesionReference("jsrt", jsrt / row["file"], f"jsrt:{row['patient_id']}", "nodule",
                                              _disc(float(row["nodule_x"]), float(row["nodule_y"]),
                                                    float(row["nodule_size_px"]))))
    return references


@dataclass
class ImageScore:
    reference: LesionReference
    label: str
    hit: dict[str, float] = field(default_factory=dict)  # method (or "random") -> peak in lesion (0/1 or expectation)
    pointing: dict[str, float] = field(default_factory=dict)
    side: dict[str, float] = field(default_factory=dict)  # empty for a bilateral lesion; 0 where no side is named
    side_named: dict[str, float] = field(default_factory=dict)  # 1 where the method names a side (as `side`)
    milliseconds: dict[str, float] = field(default_factory=dict)


def _label_index(card_labels: list[str], finding: str) -> int:
    for label in LABELS_FOR[finding]:
        if label in card_labels:
            return card_labels.index(label)
    raise ValueError(f"the classifier has none of {LABELS_FOR[finding]}")


def score_image(reference: LesionReference, classifier: str, lung_model: str, occlusion: bool = True
                ) -> ImageScore | None:
    """All methods and the random baseline on one image; None when no lung or no lesion pixel is found."""
    session = load_model(classifier)
    card = session.card.data
    card_labels = [label["id"] for label in card["labels"]]
    index = _label_index(card_labels, reference.finding)
    image = read_image(reference.image)
    lesion = reference.region(image.shape)
    fields = segment_lungs(image, lung_model)
    maps = sal.SaliencyMaps(image.shape)
    stride = maps.stride
    labels = fields.labels[::stride, ::stride]
    lesion_small = lesion[::stride, ::stride]
    if not labels.any() or not lesion_small.any():
        return None
    envelope = sal.lung_envelope(labels)
    prepared = preprocess(image, card["preprocessing"])
    crop_box = maps.working_box(prepared.crop_box)
    tensor = prepared.tensor

    def run(batch: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        return session.run({session.input_names[0]: batch}, outputs)

    score = ImageScore(reference, card_labels[index])
    model_maps: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    cam = run(tensor[None], ["cam"])["cam"][0]
    score.milliseconds["cam"] = 1000 * (time.perf_counter() - start)
    model_maps["cam"] = cam[index]
    start = time.perf_counter()
    model_maps["mirrored_cam"] = sal.mirrored_cam(lambda batch: run(batch, ["cam"])["cam"], tensor, cam)[index]
    score.milliseconds["mirrored_cam"] = score.milliseconds["cam"] + 1000 * (time.perf_counter() - start)
    if occlusion:
        start = time.perf_counter()
        model_maps["occlusion"] = sal.occlusion_sensitivity(lambda batch: run(batch, ["logits"])["logits"],
                                                            tensor)[index]
        score.milliseconds["occlusion"] = 1000 * (time.perf_counter() - start)

    scale = 512.0 / (max(image.shape) / stride)  # working pixels -> pixels of a 512 px image
    distance = ndimage.distance_transform_edt(~lesion_small) * scale
    near = distance <= POINTING_RADIUS_AT_512
    sides = nearest_side(labels)
    lesion_sides = sides[lesion_small]
    right_share = float(np.mean(lesion_sides == RIGHT_LUNG))
    lesion_side = RIGHT_LUNG if right_share >= UNILATERAL_FRACTION else (
        LEFT_LUNG if right_share <= 1 - UNILATERAL_FRACTION else None)
    lung = labels > 0
    score.hit["random"] = float(lesion_small[lung].mean())
    score.pointing["random"] = float(near[lung].mean())
    if lesion_side is not None:
        score.side["random"] = float((labels[lung] == lesion_side).mean())
        score.side_named["random"] = 1.0
    working_maps = {method: sal.to_image_space(model_map, crop_box, maps.working_shape)
                    for method, model_map in model_maps.items()}
    if fields.lesion is not None:
        start = time.perf_counter()
        weight = sal.lesion_weight(fields.lesion, maps.working_shape)
        working_maps["cam_x_lesion"] = sal.lesion_weighted(working_maps["cam"], weight)
        score.milliseconds["cam_x_lesion"] = score.milliseconds["cam"] + 1000 * (time.perf_counter() - start)
        working_maps["lesion"] = weight
    for method, raw in working_maps.items():
        saliency = sal.normalised_saliency(raw, envelope)
        peak = sal.peak_location(saliency)
        if peak is None:  # no positive evidence in the lungs: the method points nowhere
            score.hit[method] = score.pointing[method] = 0.0
            if lesion_side is not None:
                score.side[method] = score.side_named[method] = 0.0
            continue
        score.hit[method] = float(lesion_small[peak])
        score.pointing[method] = float(near[peak])
        if lesion_side is not None:
            evidence = sal.evidence_side(saliency, labels)
            named = evidence is not None and evidence.lung_mask_value == sides[peak]
            score.side_named[method] = float(named)
            score.side[method] = float(named and sides[peak] == lesion_side)
    return score


def score_all(references: list[LesionReference], classifier: str, lung_model: str, occlusion: bool = True
              ) -> Iterator[ImageScore]:
    for reference in references:
        score = score_image(reference, classifier, lung_model, occlusion)
        if score is not None:
            yield score


def _mean_ci(values: list[float], patients: list[str], seed: int) -> dict:
    low, high = bootstrap_mean_ci(values, patients, seed)
    return {"mean": round(float(np.mean(values)), 3), "ci95": [round(low, 3), round(high, 3)]}


def summarise(scores: list[ImageScore], seed: int) -> dict:
    """Per metric and method: mean with CI, the random baseline, and the paired difference with CI."""
    summary: dict = {"images": len(scores), "patients": len({s.reference.patient for s in scores}),
                     "methods": methods_of(scores), "by_source": {}, "metrics": {}}
    for source in sorted({s.reference.source for s in scores}):
        summary["by_source"][source] = sum(s.reference.source == source for s in scores)
    for metric in ("hit", "pointing", "side", "side_named", "side_when_named"):
        scored = [s for s in scores if getattr(s, "side" if metric.startswith("side") else metric)]
        entry: dict = {"n": len(scored)}
        for method in ["random", *methods_of(scores)]:
            # side right when named: over the images where this method names a side (the random point always does)
            rows = [s for s in scored if metric != "side_when_named" or s.side_named[method]]
            values = [(s.side if metric == "side_when_named" else getattr(s, metric))[method] for s in rows]
            random = [(s.side if metric == "side_when_named" else getattr(s, metric))["random"] for s in rows]
            patients = [s.reference.patient for s in rows]
            entry[method] = {"n": len(rows), **_mean_ci(values, patients, seed)} if rows else {"n": 0}
            if rows and method != "random":
                entry[method]["minus_random"] = _mean_ci([v - r for v, r in zip(values, random, strict=True)],
                                                         patients, seed)
        summary["metrics"][metric] = entry
    summary["milliseconds_median"] = {
        method: round(float(np.median([s.milliseconds[method] for s in scores])), 1)
        for method in methods_of(scores) if method in scores[0].milliseconds}
    return summary


def methods_of(scores: list[ImageScore]) -> list[str]:
    """The methods every image was scored with, in METHODS order."""
    return [method for method in METHODS if all(method in s.hit for s in scores)]


def format_table(summary: dict) -> str:
    """The summary as a plain-text table: mean [95 % CI] per method, then the difference to random."""
    names = {"hit": "peak in lesion", "pointing": "pointing game (15 px at 512)", "side": "side agreement",
             "side_named": "side named", "side_when_named": "side right when named"}

    def cell(value: dict) -> str:
        if not value["n"]:
            return f"{'(none)':56}"
        text = f"{value['mean']:.3f} [{value['ci95'][0]:.3f}, {value['ci95'][1]:.3f}]"
        if "minus_random" in value:
            difference = value["minus_random"]
            text += f" {difference['mean']:+.3f} [{difference['ci95'][0]:+.3f}, {difference['ci95'][1]:+.3f}]"
        text += f" n={value['n']}"
        return f"{text:55} "

    lines = [f"{summary['images']} images, {summary['patients']} patients ({summary['by_source']})",
             f"{'metric':30} {'n':>4}  {'random point in lung':56}" + "".join(f"{m:56}" for m in summary["methods"])]
    for metric, entry in summary["metrics"].items():
        lines.append(f"{names[metric]:30} {entry['n']:4d}  " + cell(entry["random"])
                     + "".join(cell(entry[method]) for method in summary["methods"]))
    lines.append("median ms per image: " + ", ".join(f"{m} {v}" for m, v in summary["milliseconds_median"].items()))
    return "\n".join(lines)
