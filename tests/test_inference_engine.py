"""onnxruntime engine: provider choice, sha256 verification against the card, session reuse, registry."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from radassist.errors import ModelError
from radassist.inference import engine, registry
from radassist.inference.engine import choose_providers, load_model, sha256_of


def write_tiny_model(folder, name="tiny"):
    """A real 2-op ONNX graph (y = relu(x * 2)) with its card."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 3])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["image", "two"], ["m"]),
                               helper.make_node("Relu", ["m"], ["out"])], "tiny", [x], [y], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    card = {"model_id": f"{name}-v1", "version": "1", "file": path.name, "sha256": sha256_of(path),
            "task": "classification"}
    card_path = folder / f"{name}.card.json"
    card_path.write_text(json.dumps(card))
    return path, card_path


def test_real_session_runs_and_is_built_once(tmp_path):
    _, card_path = write_tiny_model(tmp_path)
    first = load_model(card_path)
    second = load_model(card_path)
    assert first is second
    out = first.run({"image": np.array([[-1.0, 0.5, 2.0]], dtype=np.float32)})["out"]
    np.testing.assert_allclose(out, [[0.0, 1.0, 4.0]])
    assert first.provider == "CPUExecutionProvider"


def test_tampered_model_is_refused_with_a_clear_error(tmp_path):
    path, card_path = write_tiny_model(tmp_path, "tampered")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="does not match its model card"):
        load_model(card_path)


def test_missing_model_file_is_refused(tmp_path):
    path, card_path = write_tiny_model(tmp_path, "gone")
    path.unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(card_path)


def test_provider_order_prefers_gpu_only_when_a_gpu_exists():
    # Mock: the provider lists below stand in for onnxruntime-gpu / -directml / -coreml builds,
    # which cannot be installed on this CPU-only machine.
    gpu_build = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(gpu_build, gpu_present=True)[:2] == ["TensorrtExecutionProvider",
                                                                 "CUDAExecutionProvider"]
    assert choose_providers(gpu_build, gpu_present=False) == ["CPUExecutionProvider"]
    assert choose_providers(["DmlExecutionProvider", "CPUExecutionProvider"], gpu_present=False)[0] == \
        "DmlExecutionProvider"
    assert choose_providers(["CoreMLExecutionProvider", "CPUExecutionProvider"])[0] == "CoreMLExecutionProvider"
    assert choose_providers(["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_provider_override_and_unknown_override_falls_back(caplog):
    available = ["CUDAExecutionProvider", "OpenVINOExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(available, override="cpu", gpu_present=True)[0] == "CPUExecutionProvider"
    assert choose_providers(available, override="openvino", gpu_present=False)[0] == "OpenVINOExecutionProvider"
    with caplog.at_level(logging.WARNING):
        assert choose_providers(available, override="coreml", gpu_present=False)[0] == "OpenVINOExecutionProvider"
    assert "not installed" in caplog.text


def test_cpu_fallback_when_requested_provider_is_absent(tmp_path, monkeypatch, capfd):
    _, card_path = write_tiny_model(tmp_path, "fallback")
    monkeypatch.setenv("RADASSIST_PROVIDER", "cuda")
    session = load_model(card_path)
    assert session.provider == "CPUExecutionProvider"
    assert "error" not in capfd.readouterr().err.lower()  # no red error spam


def test_registry_activate_and_rollback(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("RADASSIST_MODELS_DIR", str(tmp_path / "bundled"))
    (tmp_path / "bundled").mkdir()
    _, bundled_card = write_tiny_model(tmp_path / "bundled", "cxr_classifier")
    version_dir = registry.user_models_dir() / "v2"
    version_dir.mkdir()
    _, tuned_card = write_tiny_model(version_dir, "tuned")
    assert registry.active_card_path("classifier") == bundled_card
    names = {v.model_id: v for v in registry.list_versions()}
    assert names["cxr_classifier-v1"].active and not names["tuned-v1"].active
    registry.activate(tuned_card)
    assert registry.active_card_path("classifier") == tuned_card.resolve()
    assert engine.card_path_for("classifier") == tuned_card.resolve()
    registry.rollback("classifier")
    assert registry.active_card_path("classifier") == bundled_card
