"""Where does the saliency sit on covid_cxr_seg? Peak hit rate inside the radiologists' lesion masks
(consolidation ∪ ground-glass) and saliency energy inside the radiologists' lung masks, per finding,
with bootstrap 95% CIs over images. Runs the shipped models through the runtime path.

Usage: .venv/bin/python scripts/saliency_lesion_check.py ../shared/data/covid_cxr_seg
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from radassist.pipeline.read import ReadOptions, read_radiograph

LESIONS = ("consolidation", "ground_glass_opacity")


def mask(path: Path) -> np.ndarray | None:
    return np.asarray(Image.open(path)) > 0 if path.exists() else None


def bootstrap(values: list[float], seed: int = 0, samples: int = 2000) -> list[float]:
    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=float)
    means = [rng.choice(data, data.size).mean() for _ in range(samples)]
    return [round(float(np.percentile(means, 2.5)), 3), round(float(np.percentile(means, 97.5)), 3)]


def main() -> int:
    folder = Path(sys.argv[1])
    hits: dict[str, list[float]] = {}
    energy: dict[str, list[float]] = {}
    for row in csv.DictReader(open(folder / "labels.csv", encoding="utf-8")):
        stem = Path(row["file"]).stem
        lesion_masks = [m for m in (mask(folder / "masks_by_class" / c / f"{stem}.png") for c in LESIONS)
                        if m is not None]
        lungs = mask(folder / "masks" / f"{stem}.png")
        if not lesion_masks or lungs is None:
            continue
        lesion = np.logical_or.reduce(lesion_masks)
        result = read_radiograph(folder / row["file"], ReadOptions(radiomics=False, report=False, enforce_qa=False))
        for finding in result.findings:
            saliency = result.saliency.get(finding.label)
            if saliency is None or finding.peak_rc is None or saliency.shape != lesion.shape:
                continue
            hits.setdefault(finding.label, []).append(float(lesion[finding.peak_rc]))
            energy.setdefault(finding.label, []).append(float(saliency[lungs].sum() / max(saliency.sum(), 1e-9)))
    report = {label: {"images": len(hits[label]),
                      "peak_in_lesion_rate": round(float(np.mean(hits[label])), 3),
                      "peak_in_lesion_ci95": bootstrap(hits[label]),
                      "energy_in_lungs": round(float(np.mean(energy[label])), 3),
                      "energy_in_lungs_ci95": bootstrap(energy[label])} for label in hits}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
