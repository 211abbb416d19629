"""What the anatomy model costs a read of a 1024 px image, against the lung-only model it replaced, in
the same process: segmentation (preprocessing + ONNX + post-processing of lungs and heart), the CTR
measurement and the localisation of findings in the lungs (the smoothed lesion output, normalised in the
lungs, and the side it names: once per read, shared by every label in the lungs).

Usage (the baseline card is the previous lung model, e.g. extracted from git):
    mkdir -p build/lungseg_v1 && git show 10ad840:models/lungseg.onnx > build/lungseg_v1/lungseg.onnx \\
        && git show 10ad840:models/lungseg.card.json > build/lungseg_v1/lungseg.card.json
    nice -n 10 .venv/bin/python benchmarks/bench_anatomy.py build/lungseg_v1/lungseg.card.json [IMAGE]
"""

from __future__ import annotations

import sys
from pathlib import Path

from radassist.explain import saliency as sal
from radassist.imaging.ctr import measure_ctr
from radassist.imaging.lungs import segment_lungs
from radassist.inference.engine import load_model
from radassist.io import read_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit_json, measure, print_table  # noqa: E402

# a real 1024 x 1024 chest DX (see tests/data/dicom/SOURCE.md)
DEFAULT_IMAGE = (Path(__file__).resolve().parents[1] / "tests" / "data" / "dicom" / "nhsx_nccid_test_data"
                 / "1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm")


def main(argv: list[str]) -> int:
    baseline_card = argv[0]
    image = read_image(argv[1] if len(argv) > 1 else DEFAULT_IMAGE)
    load_model(baseline_card), load_model("lungseg")
    fields = segment_lungs(image)
    labels = load_model("classifier").card.data["labels"]
    maps = sal.SaliencyMaps(image.shape)
    working_labels = fields.labels[::maps.stride, ::maps.stride]
    envelope = sal.lung_envelope(working_labels)

    def localise() -> None:
        lesion = sal.normalised_saliency(sal.lesion_weight(fields.lesion, maps.working_shape), envelope)
        sal.evidence_side(lesion, working_labels)

    timings = {
        "segment_baseline": measure(lambda: segment_lungs(image, baseline_card)),
        "segment_anatomy": measure(lambda: segment_lungs(image)),
        "measure_ctr": measure(lambda: measure_ctr(fields, image.meta)),
        "lesion_localisation": measure(localise) if fields.lesion is not None else None,
    }
    added = [name for name in ("segment_anatomy", "measure_ctr", "lesion_localisation") if timings[name]]

    def extra(key: str) -> float:
        return sum(timings[name][key] for name in added) - timings["segment_baseline"][key]

    rows = [[name, t["median_ms"], t["p95_ms"], t["cpu_median_ms"]] for name, t in timings.items() if t]
    print_table(f"{image.shape[1]}x{image.shape[0]} image, {len(labels)} classifier labels",
                ["stage", "median ms", "p95 ms", "cpu median ms"], rows)
    ratio = timings["segment_anatomy"]["median_ms"] / timings["segment_baseline"]["median_ms"]
    print(f"anatomy / baseline segmentation: {ratio:.2f}x; added to a read: wall {extra('median_ms'):+.1f} ms, "
          f"thread CPU {extra('cpu_median_ms'):+.1f} ms (goal <= 30 ms; with RADASSIST_THREADS=1 onnxruntime "
          "runs in the calling thread, so its CPU time is counted)")
    emit_json("anatomy", {"image_shape": list(image.shape), "timings": timings, "ratio": round(ratio, 3),
                          "added_ms": round(extra("median_ms"), 1), "added_cpu_ms": round(extra("cpu_median_ms"), 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
