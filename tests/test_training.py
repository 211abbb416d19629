"""A tiny real training run: real images, real pyradiomics, one epoch, a real ONNX checked against torch,
and the initializer contract `radassist finetune` relies on."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

torch = pytest.importorskip("torch")

from radassist.inference.engine import load_model, sha256_of  # noqa: E402
from radassist.training.datasets import read_folders  # noqa: E402
from radassist.training.labels import LABELS  # noqa: E402
from radassist.training.train import TrainConfig, loss_weights, target_matrix, train  # noqa: E402

PER_CLASS = 6


def _pediatric_slice(shared_data, folder):
    """A labels.csv named like the pediatric source (so it counts as pediatric), with absolute paths."""
    source = shared_data / "pediatric_pneumonia"
    rows = list(csv.DictReader(open(source / "labels.csv", encoding="utf-8")))
    picked = []
    for label, subtype in (("NORMAL", ""), ("PNEUMONIA", "bacterial"), ("PNEUMONIA", "viral")):
        picked += [r for r in rows if r["labels"] == label and r["subtype"] == subtype][:PER_CLASS]
    folder.mkdir(parents=True)
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "labels", "subtype", "patient_id", "orig_width",
                                                    "orig_height"])
        writer.writeheader()
        for row in picked:
            writer.writerow({"file": str(source / row["file"]), "labels": row["labels"], "subtype": row["subtype"],
                             "patient_id": row["patient_id"], "orig_width": row["orig_width"],
                             "orig_height": row["orig_height"]})
    return folder


@pytest.fixture(scope="module")
def tiny_run(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    folder = _pediatric_slice(shared_data, root / "pediatric_pneumonia")
    config = TrainConfig(data=[folder], out_dir=root / "model", cache_dir=root / "cache", size=64, epochs=1,
                         batch_size=6, validation_fraction=0.3, calibration_fraction=0.3, workers=1, threads=2,
                         monitor_every=1, salient_refresh_epoch=1, command="pytest tiny run")
    return train(config), root


def test_tiny_run_exports_an_onnx_that_matches_torch_and_its_card(tiny_run):
    result, _ = tiny_run
    card = json.loads(result.card_path.read_text())
    assert card["sha256"] == sha256_of(result.onnx_path)
    assert [label["id"] for label in card["labels"]] == list(LABELS)
    assert {label["id"]: label["conditional_on"] for label in card["labels"]}["viral_pattern"] == "pneumonia"
    assert all(label["calibration"]["method"] == "platt" for label in card["labels"])
    assert max(card["metrics"]["onnx_vs_torch_max_abs_diff"].values()) < 1e-4
    assert card["preprocessing"]["size"] == 64 and card["intended_use"] == "research use, not a medical device"
    assert len(card["ood"]["mean"]) == len(card["ood"]["scale"]) and card["ood"]["threshold"] > 0
    validation = card["training"]["split"]["validation_files"]
    assert 0 < len(validation) < 3 * PER_CLASS
    assert card["metrics"]["per_label"]["pneumonia"]["n_positive"] > 0
    model = onnx.load(str(result.onnx_path))
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer)
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17


def test_engine_runs_the_exported_model(tiny_run):
    result, _ = tiny_run
    session = load_model(result.card_path)
    image = np.random.default_rng(0).normal(size=(3, 1, 64, 64)).astype(np.float32)
    out = session.run({"image": image})
    assert out["probabilities"].shape == (3, len(LABELS)) and out["cam"].shape[:2] == (3, len(LABELS))
    assert np.all((out["probabilities"] >= 0) & (out["probabilities"] <= 1))
    np.testing.assert_allclose(out["cam"].mean(axis=(2, 3)), out["logits"], atol=1e-4)


def test_rewriting_head_initializers_changes_logits_cam_and_probabilities(tiny_run, tmp_path):
    """The contract of issue 7: head.weight, head.bias and temperature are the graph's only copies."""
    import onnxruntime as ort

    result, _ = tiny_run
    model = onnx.load(str(result.onnx_path))
    count = len(LABELS)
    new = {"head.weight": None, "head.bias": np.linspace(-1.0, 2.0, count).astype(np.float32),
           "temperature": np.full(count, 2.0, np.float32)}
    for init in model.graph.initializer:
        if init.name in new:
            value = new[init.name]
            if value is None:
                value = np.zeros(numpy_helper.to_array(init).shape, np.float32)
            init.CopyFrom(numpy_helper.from_array(value, init.name))
    path = tmp_path / "rewritten.onnx"
    onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(1).normal(size=(2, 1, 64, 64)).astype(np.float32)
    probabilities, logits, cam = session.run(["probabilities", "logits", "cam"], {"image": image})
    np.testing.assert_allclose(logits, np.tile(new["head.bias"], (2, 1)), atol=1e-6)
    np.testing.assert_allclose(cam, np.broadcast_to(new["head.bias"][None, :, None, None], cam.shape), atol=1e-6)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-logits / 2.0)), atol=1e-6)


def test_split_keeps_patients_whole_and_writes_it(tiny_run):
    _, root = tiny_run
    rows = list(csv.DictReader(open(root / "cache" / "runs" / "radassist-cxr-classifier" / "split.csv")))
    sides: dict[str, set] = {}
    for row in rows:
        sides.setdefault(row["group"], set()).add(row["split"])
    assert all(len(s) == 1 for s in sides.values())
    assert {"train", "calibration", "validation"} == {row["split"] for row in rows}


def test_loss_weights_balance_classes_within_each_domain(shared_data):
    records = read_folders([shared_data / "pediatric_pneumonia", shared_data / "covidx_actualmed"])
    targets = target_matrix(records)
    domains = np.array([r.domain for r in records])
    weights = loss_weights(targets, domains, np.ones(len(records), bool))
    j = LABELS.index("pneumonia")
    pediatric = domains == "pediatric"
    positive, negative = targets[:, j] == 1, targets[:, j] == 0
    # each (domain, class) cell carries the same total weight unless capped
    np.testing.assert_allclose(weights[pediatric & positive, j].sum(), weights[pediatric & negative, j].sum(),
                               rtol=1e-5)
    assert weights[~pediatric & negative, j].mean() > weights[pediatric & negative, j].mean()
    v = LABELS.index("viral_pattern")
    assert np.all(weights[targets[:, v] == -1, v] == 0)
