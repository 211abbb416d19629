"""Check that the pyradiomics wheel we install gives the same features as the official 3.0.1 release.

Usage (builds the official release in a throw-away venv, ~1 min):
    .venv/bin/python scripts/verify_pyradiomics.py IMAGE.png MASK.png
Prints the number of features compared and the largest relative difference.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

EXTRACT = r"""
import json, sys, SimpleITK as sitk, radiomics
from radiomics import featureextractor
image = sitk.ReadImage(sys.argv[1], sitk.sitkFloat32)
mask = sitk.Cast(sitk.ReadImage(sys.argv[2]) > 0, sitk.sitkUInt8)
extractor = featureextractor.RadiomicsFeatureExtractor(force2D=True, binWidth=8)
extractor.disableAllFeatures()
for name in ("firstorder", "glcm", "glrlm", "glszm", "shape2D"):
    extractor.enableFeatureClassByName(name)
features = {k: float(v) for k, v in extractor.execute(image, mask).items() if not k.startswith("diagnostics")}
print(json.dumps({"version": radiomics.__version__, "features": features}))
"""


def features_with(python: str, image: str, mask: str) -> dict:
    output = subprocess.run([python, "-c", EXTRACT, image, mask], check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> int:
    image, mask = sys.argv[1], sys.argv[2]
    ours = features_with(sys.executable, image, mask)
    with tempfile.TemporaryDirectory() as folder:
        venv = Path(folder) / "official"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run(pip + ["numpy", "setuptools", "wheel", "versioneer", "SimpleITK"], check=True)
        subprocess.run(pip + ["--no-build-isolation", "pyradiomics==3.0.1"], check=True)
        official = features_with(str(venv / "bin" / "python"), image, mask)
    a, b = ours["features"], official["features"]
    if set(a) != set(b):
        print(f"feature names differ: {sorted(set(a) ^ set(b))}")
        return 1
    worst = max((abs(a[k] - b[k]) / max(abs(b[k]), 1e-12), k) for k in a)
    print(f"{ours['version']} vs {official['version']}: {len(a)} features, max relative difference "
          f"{worst[0]:.3g} ({worst[1]})")
    return 0 if worst[0] < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
