"""Read: load + lungs + preprocess + inference + QA + saliency + radiomics + report, per stage (median, p95
of >= 20 reads), on the bundled samples (440-1024 px) and on a 3000 x 3000 chest DX (the size a
detector delivers; large_dicom.py), against the baseline a user would pick instead: TorchXRayVision's
DenseNet-121 in PyTorch eager at 224x224 on the same input (speed only). Also the first read in a fresh
process (imports, model sessions, knowledge graph) against the second read in that process, onnxruntime
graph-optimisation levels, thread counts, and an int8-quantised classifier (speed here; its AUROC change
comes from `radassist evaluate` on the validation split, see --int8-out).

Run: .venv/bin/python benchmarks/bench_read.py [--runs 5] [--int8-out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit_json, measure, print_table  # noqa: E402
from large_dicom import large_chest_dicoms  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted((REPO / "resources" / "samples").glob("*.png")) + [
    REPO / "resources" / "samples" / "nih_cxr14_no_finding.dcm"]
FIRST_RESULT_STAGES = ("chest_check", "lungs", "preprocess", "inference", "qa", "saliency")  # findings + saliency
COLD_READ = """
import sys, time
start = time.perf_counter()
from radassist.pipeline.read import read_radiograph
from radassist.io import read_image
image = read_image(sys.argv[1])
loaded = time.perf_counter()
read_radiograph(image)
first = time.perf_counter()
read_radiograph(image)
print((first - loaded) * 1000, (time.perf_counter() - first) * 1000, (loaded - start) * 1000)
"""


def stage_times(images: list[Path], runs: int) -> dict:
    """Per-stage median/p95 over `runs` passes of reads of `images` (each image decoded once, untimed, so
    the first pass does not pay the models' loading; `cold_first_read` measures that)."""
    from radassist.io import read_image
    from radassist.pipeline.read import read_radiograph

    decoded = [read_image(path) for path in images]
    for image in decoded:
        read_radiograph(image)
    per_stage: dict[str, list[float]] = {}
    for _ in range(runs):
        for image in decoded:
            started = time.perf_counter()
            result = read_radiograph(image)
            wall = (time.perf_counter() - started) * 1000.0
            for stage, ms in result.timings_ms.items():
                per_stage.setdefault(stage, []).append(ms)
            t = result.timings_ms
            per_stage.setdefault("first AI result (findings + saliency)", []).append(
                sum(t.get(s, 0.0) for s in FIRST_RESULT_STAGES))  # older versions had no "qa" stage
            per_stage.setdefault("complete read (wall clock)", []).append(wall)
    return {k: {"median_ms": round(float(np.median(v)), 2), "p95_ms": round(float(np.percentile(v, 95)), 2),
                "n": len(v)} for k, v in per_stage.items() if k != "load"}


def cold_first_read(path: Path, repeats: int = 3) -> dict:
    """First read in a fresh process (after the image is decoded) vs the second read in that process."""
    samples = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", COLD_READ, str(path)], check=True, capture_output=True,
                             text=True).stdout.split()
        samples.append([float(v) for v in out])
    first, second, imports_and_decode = (float(np.median([s[i] for s in samples])) for i in range(3))
    return {"first_read_ms": round(first, 1), "second_read_ms": round(second, 1),
            "ratio": round(first / second, 2), "decode_with_imports_ms": round(imports_and_decode, 1),
            "processes": repeats}


def classifier_input() -> tuple[np.ndarray, dict]:
    from radassist.imaging.preprocess import preprocess
    from radassist.inference.engine import load_model
    from radassist.io import read_image

    card = load_model("classifier").card
    return preprocess(read_image(SAMPLES[0]), card.data["preprocessing"]).tensor[None], card.data


def ort_session(path: Path, level: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantize(model_path: Path, out_dir: Path, calibration: np.ndarray) -> Path:
    """Static int8 (QDQ) quantisation calibrated on a few real inputs."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"image": x[None]} for x in calibration])

        def get_next(self):
            return next(self.items, None)

    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = out_dir / "prepared.onnx"
    quant_pre_process(str(model_path), str(prepared))
    quantized = out_dir / "cxr_classifier.onnx"
    quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
    prepared.unlink()
    return quantized


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="passes over the 4 samples (5 -> 20 reads)")
    parser.add_argument("--int8-out", type=Path, default=Path("/tmp/radassist_bench/int8"),
                        help="where the int8 model + a copy of the card go (for `radassist evaluate`)")
    args = parser.parse_args()

    stages = {"bundled samples (440-1024 px)": stage_times(SAMPLES, args.runs),
              "3000x3000 DX": stage_times([large_chest_dicoms()["raw"]], max(20, args.runs))}
    names = list(next(iter(stages.values())))
    print_table("read: per stage (ms; median / p95)", ["stage", *stages],
                [[name, *(f"{v[name]['median_ms']} / {v[name]['p95_ms']}" for v in stages.values())]
                 for name in names])
    cold = cold_first_read(SAMPLES[-1])
    print_table("first read in a fresh process vs the second (NIH 1024 DICOM; median of 3 processes; ms)",
                ["first read", "second read", "ratio", "decode incl. imports"],
                [[cold["first_read_ms"], cold["second_read_ms"], cold["ratio"], cold["decode_with_imports_ms"]]])

    import torch
    from densenet121_baseline import baseline_model

    from radassist.imaging.preprocess import preprocess
    from radassist.inference.engine import load_model, sha256_of
    from radassist.io import read_image

    tensor, card = classifier_input()
    session = load_model("classifier")
    densenet = baseline_model()
    baseline_input = torch.nn.functional.interpolate(torch.from_numpy(tensor), size=(224, 224), mode="bilinear")
    comparison, rows = {}, []
    for threads in (1, 2):  # same thread budget for both; oversubscribed OpenMP spins badly on 2 cores
        torch.set_num_threads(threads)
        s = ort_session(session.card.onnx_path, "ORT_ENABLE_ALL", threads)
        ours = measure(lambda s=s: s.run(None, {"image": tensor}), runs=30)
        with torch.inference_mode():
            base = measure(lambda: densenet(baseline_input), runs=10)
        ratio = round(base["median_ms"] / ours["median_ms"], 2)
        comparison[f"threads_{threads}"] = {"classifier_ms": ours, "densenet121_torch_ms": base,
                                            "speedup_vs_densenet121": ratio}
        rows += [[f"DenseNet-121 torch eager, {threads} thread(s)", base["median_ms"], base["p95_ms"], 1.0],
                 [f"RadAssist ONNX CPU, {threads} thread(s)", ours["median_ms"], ours["p95_ms"], ratio]]
    print_table("classifier inference vs TorchXRayVision DenseNet-121 (torch eager, 224x224, random weights)",
                ["model", "median ms", "p95 ms", "speed-up"], rows)

    onnx_path = session.card.onnx_path
    variants = {}
    for level in ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL"):
        for threads in (1, 2):
            s = ort_session(onnx_path, level, threads)
            variants[f"{level} threads={threads}"] = measure(lambda s=s: s.run(["probabilities"], {"image": tensor}),
                                                             runs=30)
    calibration = np.concatenate([preprocess(read_image(p), card["preprocessing"]).tensor[None] for p in SAMPLES])
    int8_path = quantize(onnx_path, args.int8_out, calibration)
    int8_card = dict(card, file=int8_path.name, model_id=card["model_id"] + "-int8",
                     sha256=sha256_of(int8_path))
    (args.int8_out / "cxr_classifier.card.json").write_text(json.dumps(int8_card, indent=1))
    s = ort_session(int8_path, "ORT_ENABLE_ALL", 2)
    variants["int8 QDQ ORT_ENABLE_ALL threads=2"] = measure(lambda: s.run(["probabilities"], {"image": tensor}),
                                                             runs=30)
    fp32 = variants["ORT_ENABLE_ALL threads=2"]["median_ms"]
    print_table("classifier: onnxruntime settings (ms; ratio vs ORT_ENABLE_ALL, 2 threads)",
                ["variant", "median", "p95", "ratio"],
                [[k, v["median_ms"], v["p95_ms"], round(v["median_ms"] / fp32, 3)] for k, v in variants.items()])
    print(f"int8 model + card written to {args.int8_out} (size {int8_path.stat().st_size // 1024} KiB vs "
          f"{onnx_path.stat().st_size // 1024} KiB); AUROC change: RADASSIST_MODELS_DIR={args.int8_out} "
          "radassist evaluate ... on the validation split")
    emit_json("read", {"stages": stages, "cold_first_read": cold, "classifier_vs_densenet121": comparison, "variants": variants,
                       "at": time.strftime("%F %T")})


if __name__ == "__main__":
    main()
