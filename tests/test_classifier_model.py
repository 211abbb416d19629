"""The shipped classifier: its card is complete and true, and the runtime (no torch) runs it on real images."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from radassist.imaging.preprocess import preprocess
from radassist.inference.engine import load_model, sha256_of
from radassist.io import read_image
from radassist.paths import models_dir

CARD = models_dir() / "cxr_classifier.card.json"
MAX_BYTES = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(CARD.read_text(encoding="utf-8"))


def test_card_is_complete(card):
    for key in ("model_id", "version", "file", "sha256", "task", "labels", "preprocessing", "temperature",
                "metrics", "ood", "training", "intended_use", "limits"):
        assert key in card
    assert card["intended_use"] == "research use, not a medical device"
    ids = [label["id"] for label in card["labels"]]
    assert {"pneumonia", "viral_pattern", "opacity"} <= set(ids)
    for label in card["labels"]:
        assert 0 < label["threshold"] < 1 and label["threshold_rule"] and label["trained_on"]
        block = card["metrics"]["per_label"][label["id"]]
        low, high = block["auroc_ci95"]
        assert low <= block["auroc"] <= high
    assert next(lb for lb in card["labels"] if lb["id"] == "viral_pattern")["conditional_on"] == "pneumonia"
    assert len(card["temperature"]) == len(ids)
    assert card["training"]["command"].startswith("radassist train")
    epochs = card["training"]["history"] + card["training"]["ablation_history"]
    assert sum(e["seconds"] for e in epochs) / 60 <= 120  # the budget for the model and its ablation
    assert all(d["licence"] for d in card["training"]["data"])


def test_onnx_file_matches_card_and_contract(card):
    path = models_dir() / card["file"]
    assert path.stat().st_size <= MAX_BYTES
    assert sha256_of(path) == card["sha256"]
    model = onnx.load(str(path))
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer)
    initializers = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    labels = len(card["labels"])
    assert initializers["head.weight"].shape == (labels, len(card["ood"]["mean"]))
    assert initializers["head.bias"].shape == (labels,)
    np.testing.assert_allclose(initializers["temperature"], card["temperature"], rtol=1e-5)
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["probabilities", "logits", "cam", "embedding"]


def test_engine_runs_the_shipped_model_on_real_images(shared_data, card):
    session = load_model("classifier")
    assert session.card.model_id == card["model_id"]
    files = ["pediatric_pneumonia/images/IM-0117-0001.png", "pediatric_pneumonia/images/person1007_bacteria_2938.png",
             "dicom/dcmfx_test_assets/fo-dicom/CR-MONO1-10-chest.dcm"]
    batch = np.stack([preprocess(read_image(shared_data / f), card["preprocessing"]).tensor for f in files])
    out = session.run({"image": batch})
    labels = len(card["labels"])
    assert out["probabilities"].shape == (3, labels)
    assert np.all((out["probabilities"] >= 0) & (out["probabilities"] <= 1))
    temperature = np.asarray(card["temperature"], dtype=np.float32)
    np.testing.assert_allclose(out["probabilities"], 1 / (1 + np.exp(-out["logits"] / temperature)), atol=1e-5)
    np.testing.assert_allclose(out["cam"].mean(axis=(2, 3)), out["logits"], atol=1e-4)
    assert out["embedding"].shape == (3, len(card["ood"]["mean"]))


def test_ood_distance_keeps_a_chest_film_inside(shared_data, card):
    """The card's embedding statistics put a chest film inside. (A non-chest image is refused earlier, by the chest
    check: tests/test_qa_chest_check.py; the classifier's embedding distance alone does not separate an abdomen
    scout from chest films, so it only adds the 'outside validated use' notice.)"""
    session = load_model("classifier")
    mean, scale = np.asarray(card["ood"]["mean"]), np.asarray(card["ood"]["scale"])
    tensor = preprocess(read_image(shared_data / "pediatric_pneumonia/images/IM-0147-0001.png"),
                        card["preprocessing"]).tensor[None]
    embedding = session.run({"image": tensor}, ["embedding"])["embedding"][0]
    assert float(np.sqrt((((embedding - mean) / scale) ** 2).mean())) < card["ood"]["threshold"]
