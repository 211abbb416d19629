"""Export the classifier to ONE self-contained ONNX file and prove it computes what torch computes.

The TorchScript exporter is used (dynamo=False): it keeps parameter names as initializer names, so the
head and temperature can be found and rewritten later ("head.weight", "head.bias", "temperature"), and
it needs no onnxscript. `check_head_contract` fails the export if a future torch folds those
initializers into renamed copies.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from radassist.errors import ModelError
from radassist.training.model import Classifier

INPUT_NAME = "image"
OUTPUT_NAMES = ("probabilities", "logits", "cam", "embedding")
OPSET = 18
HEAD_INITIALIZERS = ("head.weight", "head.bias", "temperature")


def export_onnx(model: Classifier, path: Path, size: int) -> None:
    model = model.eval()
    example = torch.zeros(2, 1, size, size)
    dynamic = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (example,), str(path), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)
    check_head_contract(path, model.head.out_features, model.head.in_features)


def check_head_contract(path: Path, num_labels: int, embedding_size: int) -> None:
    """The initializers `radassist finetune` rewrites exist with the promised shapes and are the ones
    the graph uses for the logits, the CAM and the calibration."""
    import onnx

    graph = onnx.load(str(path)).graph
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    expected = {"head.weight": [num_labels, embedding_size], "head.bias": [num_labels], "temperature": [num_labels]}
    for name, shape in expected.items():
        if shapes.get(name) != shape:
            raise ModelError(f"exported ONNX lacks initializer {name} {shape} (found {shapes.get(name)})")
    uses = {name: sum(name in node.input for node in graph.node) for name in HEAD_INITIALIZERS}
    if uses["head.weight"] < 2 or uses["head.bias"] < 2 or uses["temperature"] < 1:
        raise ModelError(f"exported ONNX does not use the head initializers for both logits and CAM: {uses}")


def max_abs_difference(model: Classifier, path: Path, images: np.ndarray) -> dict[str, float]:
    """Per output, the largest |onnxruntime - torch| on real images."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(list(OUTPUT_NAMES), {INPUT_NAME: images.astype(np.float32)})
    with torch.no_grad():
        torch_outputs = model.eval()(torch.from_numpy(images.astype(np.float32)))
    return {name: float(np.abs(a - b.numpy()).max()) for name, a, b in zip(OUTPUT_NAMES, onnx_outputs, torch_outputs, strict=True)}
