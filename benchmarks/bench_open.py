"""Open: path -> displayable 8-bit pixels, against bare `pydicom.dcmread(path).pixel_array`.

Real DICOMs from tests/data/dicom and a 3000x3000 12-bit chest DX (uncompressed and JPEG 2000 lossless,
made from real image content by large_dicom.py). For JPEG 2000 the reduced-resolution first picture
(radassist.io.preview) is measured too: that is what the viewer shows first.
Run: .venv/bin/python benchmarks/bench_open.py [--runs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit_json, measure, print_table  # noqa: E402
from large_dicom import large_chest_dicoms  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
REAL = {
    "chest DX 1024 (implicit LE)": "nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm",
    "chest CR 440 MONO1 (ACR-NEMA)": "dcmfx_test_assets/fo-dicom/CR-MONO1-10-chest.dcm",
    "CR 1576x1976 JPEG lossless": "dcmfx_test_assets/fo-dicom/CR-ModalitySequenceLUT.dcm",
    "MG 788x1318 JPEG lossless": "dcmfx_test_assets/fo-dicom/OutOfBoundsOverlay.dcm",
}


def baseline(path: Path) -> np.ndarray:
    import pydicom

    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    return ds.pixel_array


def ours(path: Path) -> np.ndarray:
    from radassist.imaging.windowing import apply_window
    from radassist.io import read_image

    image = read_image(path)
    window = image.default_window()
    return (apply_window(image.pixels, window.center, window.width) * 255).astype(np.uint8)


def ours_first_picture(path: Path) -> np.ndarray:
    from radassist.imaging.windowing import apply_window
    from radassist.io.preview import read_preview

    preview = read_preview(path, max_side=512)
    window = preview.image.default_window()
    return (apply_window(preview.image.pixels, window.center, window.width) * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cases = {name: REPO / "tests/data/dicom" / rel for name, rel in REAL.items()}
    large = large_chest_dicoms()
    cases["3000x3000 12-bit raw"] = large["raw"]
    cases["3000x3000 12-bit JPEG 2000 lossless"] = large["j2k"]
    rows, results = [], {}
    for name, path in cases.items():
        base = measure(lambda p=path: baseline(p), runs=args.runs)
        mine = measure(lambda p=path: ours(p), runs=args.runs)
        entry = {"pydicom_pixel_array": base, "radassist_display": mine,
                 "ratio": round(mine["median_ms"] / base["median_ms"], 3)}
        row = [name, base["median_ms"], mine["median_ms"], mine["p95_ms"], entry["ratio"], ""]
        if "JPEG 2000" in name:
            first = measure(lambda p=path: ours_first_picture(p), runs=args.runs)
            entry["radassist_first_picture"] = first
            entry["first_picture_ratio"] = round(first["median_ms"] / base["median_ms"], 3)
            row[-1] = f"{first['median_ms']} ({entry['first_picture_ratio']}x)"
        rows.append(row)
        results[name] = entry
    print_table("open: path -> displayable pixels (ms; ratio = radassist / pydicom pixel_array)",
                ["image", "pydicom median", "radassist median", "radassist p95", "ratio", "first picture"], rows)
    emit_json("open", {"cases": results})


if __name__ == "__main__":
    main()
