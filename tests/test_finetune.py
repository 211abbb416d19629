"""`radassist finetune` piece by piece, on a tiny real ONNX classifier built here (runs without the shipped
model): head rewriting, the shrunk refit, the patient split, reading exports, refusals, and the whole
recipe end to end on generated radiograph-like images. The loop on the shipped model and real images
is tests/test_feedback_loop.py.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from radassist.cli import main as cli_main
from radassist.errors import InputRefused, ModelError
from radassist.imaging.preprocess import default_spec
from radassist.inference import registry
from radassist.inference.engine import sha256_of
from radassist.training import finetune as ft
from radassist.training.metrics import auroc

SIZE = 16  # model input side of the tiny classifier
EMBEDDING = 8
LABELS = [{"id": "pneumonia", "display_name": "Pneumonia", "threshold": 0.5, "conditional_on": None},
          {"id": "viral_pattern", "display_name": "Viral", "threshold": 0.5, "conditional_on": "pneumonia"}]


def tiny_classifier(path: Path, *, seed: int = 0, head_names=("head.weight", "head.bias", "temperature")) -> None:
    """image [N,1,16,16] -> embedding = relu(flatten . E) -> logits = embedding . W^T + b ->
    probabilities = sigmoid(logits / temperature): the shipped model's head contract, in miniature."""
    rng = np.random.default_rng(seed)
    weight_name, bias_name, temperature_name = head_names
    initializers = [
        numpy_helper.from_array(rng.normal(0, 0.1, (SIZE * SIZE, EMBEDDING)).astype(np.float32), "encoder.weight"),
        numpy_helper.from_array(rng.normal(0, 0.5, (len(LABELS), EMBEDDING)).astype(np.float32), weight_name),
        numpy_helper.from_array(np.zeros(len(LABELS), np.float32), bias_name),
        numpy_helper.from_array(np.full(len(LABELS), 2.0, np.float32), temperature_name),
    ]
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "encoder.weight"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["embedding"]),
        helper.make_node("Gemm", ["embedding", weight_name, bias_name], ["logits"], transB=1),
        helper.make_node("Div", ["logits", temperature_name], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", width])
         for name, width in (("probabilities", len(LABELS)), ("logits", len(LABELS)), ("embedding", EMBEDDING))],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


def tiny_card(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "tiny.onnx"
    tiny_classifier(onnx_path)
    card = {"model_id": "tiny-classifier", "version": "0.1", "file": onnx_path.name, "sha256": sha256_of(onnx_path),
            "task": "classification", "labels": LABELS, "temperature": [2.0, 2.0],
            "preprocessing": default_spec(SIZE), "metrics": {}, "training": {"split": {}}}
    card_path = folder / "tiny.card.json"
    card_path.write_text(json.dumps(card))
    return card_path


def write_images(folder: Path, count: int, seed: int) -> list[str]:
    """Generated 64 px radiograph-like images; odd-numbered ones have a bright blob in the lower zone
    (the tiny model's 'pneumonia'). Returns the file names relative to `folder`."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    yy, xx = np.mgrid[:64, :64]
    files = []
    for i in range(count):
        pixels = rng.normal(90, 20, (64, 64))
        if i % 2:
            pixels += 90 * np.exp(-((yy - 44) ** 2 + (xx - 20 - rng.integers(0, 24)) ** 2) / 60)
        files.append(f"images/i{i}.png")
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / files[-1])
    return files


def write_labels(folder: Path, rows: list[dict]) -> None:
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def feedback_folder(folder: Path, count: int, *, final=lambda i: f"pneumonia={i % 2}", seed: int = 1) -> Path:
    """An export-shaped folder: labels.csv with final_labels, one patient per image."""
    files = write_images(folder, count, seed)
    write_labels(folder, [{"file": f, "labels": "", "patient_id": f"RA{i:010d}", "split": "train",
                           "final_labels": final(i)} for i, f in enumerate(files)])
    return folder


def trained_tiny_card(folder: Path, data_root: Path) -> Path:
    """The tiny classifier with a head that separates the blob images (nearest-mean direction on its own
    embeddings), and a validation split of 40 generated images under data_root/synthetic."""
    card_path = tiny_card(folder)
    onnx_path = folder / "tiny.onnx"
    train = folder / "train"
    files = write_images(train, 60, seed=3)
    embedding = ft.run_images(ft.onnx_runner(onnx_path), [train / f for f in files], default_spec(SIZE)).embedding
    blob = np.arange(60) % 2 == 1
    direction = embedding[blob].mean(0) - embedding[~blob].mean(0)
    direction *= 4.0 / (direction @ direction)
    bias = -direction @ (embedding[blob].mean(0) + embedding[~blob].mean(0)) / 2
    ft.write_onnx(onnx_path, onnx_path, {"head.weight": np.stack([direction, direction]),
                                         "head.bias": np.array([bias, bias]), "temperature": np.ones(2)})
    validation = write_images(data_root / "synthetic", 40, seed=4)
    write_labels(data_root / "synthetic", [{"file": f, "labels": "PNEUMONIA" if i % 2 else "NORMAL",
                                            "patient_id": f"v{i}"} for i, f in enumerate(validation)])
    card = json.loads(card_path.read_text())
    card.update(sha256=sha256_of(onnx_path), temperature=[1.0, 1.0],
                training={"split": {"validation_files": [f"synthetic/{f}" for f in validation]}})
    card_path.write_text(json.dumps(card))
    return card_path


# --- the ONNX head ---------------------------------------------------------------------------------

def test_rewritten_head_is_what_onnxruntime_computes(tmp_path: Path):
    base = tmp_path / "base.onnx"
    tiny_classifier(base)
    head = ft.read_head(base)
    new = {"head.weight": head["head.weight"] * -1.5, "head.bias": np.array([0.3, -0.2]),
           "temperature": np.array([1.25, 3.0])}
    out = tmp_path / "new.onnx"
    ft.write_onnx(base, out, new)
    images = np.random.default_rng(3).normal(size=(5, 1, SIZE, SIZE)).astype(np.float32)
    result = ft.onnx_runner(out)(images)
    logits = result["embedding"] @ new["head.weight"].T + new["head.bias"]
    assert np.allclose(result["logits"], logits, atol=1e-5)
    assert np.allclose(result["probabilities"], 1 / (1 + np.exp(-logits / new["temperature"])), atol=1e-6)
    assert np.allclose(ft.onnx_runner(base)(images)["embedding"], result["embedding"])  # encoder untouched


def test_a_model_without_the_head_initializers_is_refused(tmp_path: Path):
    path = tmp_path / "other.onnx"
    tiny_classifier(path, head_names=("fc.weight", "fc.bias", "temperature"))
    with pytest.raises(ModelError, match="head.weight"):
        ft.read_head(path)


# --- the refit -------------------------------------------------------------------------------------

def _synthetic(n: int, rng, direction: np.ndarray, bias: float = 0.0):
    x = np.abs(rng.normal(1.0, 0.8, (n, len(direction))))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x - 1.0) @ direction - bias))).astype(float)
    return x, y


def test_feedback_that_agrees_with_the_base_head_barely_moves_it():
    rng = np.random.default_rng(0)
    w_base = rng.normal(0, 1, 32)
    x, y = _synthetic(60, rng, w_base)
    fit = ft.fit_label(x, y, [f"p{i}" for i in range(60)], w_base, float(-w_base.sum()), 1.0, 0.5, seed=0)
    assert fit.status in ("refitted", "recalibrated")
    change = np.linalg.norm(fit.weight - w_base) / np.linalg.norm(w_base)
    assert change < 0.35, change
    assert 0.3 < fit.temperature < 3.0


def test_a_signal_the_base_head_lacks_is_learnt_and_generalises():
    rng = np.random.default_rng(1)
    w_base = rng.normal(0, 1, 32)
    truth = w_base.copy()
    truth[:8] = 0
    truth[8:16] *= -1  # half of what the base head relies on is wrong at this site
    x, y = _synthetic(200, rng, truth)
    fit = ft.fit_label(x, y, [f"p{i}" for i in range(200)], w_base, float(-w_base.sum()), 1.0, 0.5, seed=0)
    assert fit.status == "refitted" and fit.details["shrinkage"] < ft.SHRINKAGE_GRID[-1]
    fresh_x, fresh_y = _synthetic(400, rng, truth)
    before, after = auroc(fresh_y, fresh_x @ w_base), auroc(fresh_y, fresh_x @ fit.weight)
    assert after > before + 0.05, (before, after)
    assert fit.details["threshold_source"].startswith("Youden")


def test_too_few_examples_leave_a_label_unchanged_and_few_keep_the_base_threshold():
    rng = np.random.default_rng(2)
    w_base = rng.normal(0, 1, 16)
    x = np.abs(rng.normal(size=(12, 16)))
    fit = ft.fit_label(x, np.array([1.0, 1.0] + [0.0] * 10), [f"p{i}" for i in range(12)], w_base, 0.1, 2.0, 0.7, 0)
    assert fit.status == "unchanged" and "2 positive" in fit.reason
    assert (fit.weight is w_base) and fit.temperature == 2.0 and fit.threshold == 0.7
    y = np.array([1.0] * 6 + [0.0] * 6)
    fit = ft.fit_label(x, y, [f"p{i}" for i in range(12)], w_base, 0.1, 2.0, 0.7, 0)
    assert fit.status != "unchanged" and fit.threshold == 0.7 and "base threshold kept" in fit.details["threshold_source"]


def test_patient_split_keeps_patients_whole_is_seeded_and_covers_both_classes():
    cases = [ft.FeedbackCase(f"f{i}", Path(f"f{i}"), f"p{i // 2}", {"pneumonia": (i // 2) % 2}) for i in range(40)]
    held = ft.split_patients(cases, ["pneumonia"], 0.3, seed=5)
    assert np.array_equal(held, ft.split_patients(cases, ["pneumonia"], 0.3, seed=5))
    assert not np.array_equal(held, ft.split_patients(cases, ["pneumonia"], 0.3, seed=6))
    for i in range(0, 40, 2):
        assert held[i] == held[i + 1]  # both images of a patient on the same side
    assert 0.2 <= held.mean() <= 0.4
    assert {c.targets["pneumonia"] for c, h in zip(cases, held, strict=True) if h} == {0, 1}
    one_patient = [ft.FeedbackCase(c.file, c.path, "p0", c.targets) for c in cases]
    with pytest.raises(InputRefused, match="1 patient"):
        ft.split_patients(one_patient, ["pneumonia"], 0.3, seed=0)


def test_regression_check_flags_a_validation_auroc_drop():
    assert ft.regression_check({"pneumonia": {"auroc_change": -0.01}})["ok"]
    verdict = ft.regression_check({"pneumonia": {"auroc_change": -0.2}, "viral_pattern": {"auroc_change": None}})
    assert not verdict["ok"] and verdict["labels_over_limit"] == {"pneumonia": -0.2}


def test_compare_reports_both_versions_and_a_paired_change():
    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    before = np.array([0.6, 0.4, 0.7, 0.3, 0.8, 0.5, 0.2, 0.9])
    after = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.2, 0.9])
    block = ft.compare(y, before, after, 0.5, 0.5)
    assert block["after"]["auroc"] == 1.0 and block["before"]["errors_at_threshold"] == 3
    assert block["after"]["errors_at_threshold"] == 0 and block["after"]["log_loss"] < block["before"]["log_loss"]
    low, high = block["auroc_change_ci95"]
    assert low <= block["auroc_change"] <= high


# --- reading the feedback folder ---------------------------------------------------------------------

def test_final_labels_are_read_and_uncertain_or_orphan_conditional_labels_dropped(tmp_path: Path):
    def final(i: int) -> str:
        return ["pneumonia=1;viral_pattern=1", "pneumonia=0;viral_pattern=0", "pneumonia=-1;viral_pattern=1",
                "pneumonia=1;viral_pattern=-1;cardiomegaly=1"][i % 4]

    folder = feedback_folder(tmp_path / "fb", 16, final=final)
    cases, source = ft.read_feedback(folder, {"labels": LABELS})
    assert "final_labels" in source
    by_file = {c.file: c.targets for c in cases}
    assert by_file["images/i0.png"] == {"pneumonia": 1, "viral_pattern": 1}
    assert by_file["images/i1.png"] == {"pneumonia": 0}  # viral pattern means nothing without pneumonia
    assert "images/i2.png" not in by_file  # uncertain pneumonia: nothing known the model has
    assert by_file["images/i3.png"] == {"pneumonia": 1}


def test_a_signed_unchanged_ai_draft_never_becomes_a_training_label(tmp_path: Path):
    folder = tmp_path / "fb"
    files = write_images(folder, 16, 1)
    write_labels(folder, [{"file": f, "labels": "", "patient_id": f"RA{i:010d}", "split": "train",
                           "final_labels": f"pneumonia={i % 2}", "ai_draft_unchanged": int(i < 4)}
                          for i, f in enumerate(files)])
    cases, _ = ft.read_feedback(folder, {"labels": LABELS})
    assert sorted(c.file for c in cases) == sorted(files[4:])  # the model's own words are left out


def test_the_split_depends_on_the_images_not_on_the_exports_pseudonyms(tmp_path: Path):
    first = feedback_folder(tmp_path / "a", 30)
    second = feedback_folder(tmp_path / "b", 30)
    text = (second / "labels.csv").read_text().replace("RA00000", "RAFFFFF")  # a re-export: new pseudonyms
    (second / "labels.csv").write_text(text)
    splits = []
    for folder in (first, second):
        cases, _ = ft.read_feedback(folder, {"labels": LABELS})
        held = ft.split_patients(cases, ["pneumonia", "viral_pattern"], 0.3, seed=0)
        splits.append(sorted(c.file for c, h in zip(cases, held, strict=True) if h))
    assert splits[0] == splits[1] and splits[0]


# --- refusals through the command line ----------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "does not exist"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "has no labels.csv"),
    (lambda d: feedback_folder(d / "few", 6), "only 6 images"),
    (lambda d: feedback_folder(d / "other", 20, final=lambda i: f"cardiomegaly={i % 2}"), "no image"),
    (lambda d: feedback_folder(d / "bad", 20, final=lambda i: "pneumonia=yes"), "is not label=1/0/-1"),
])
def test_bad_feedback_is_refused_with_exit_2_and_one_line(tmp_path: Path, data_dir: Path, capsys, make, message):
    card = tiny_card(tmp_path / "model")
    assert cli_main(["finetune", "--feedback", str(make(tmp_path)), "--base", str(card)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("radassist: error: ") and message in err and err.count("\n") == 1
    assert list(registry.user_models_dir().glob("*")) == []  # nothing half-written


def test_a_base_model_that_does_not_match_its_card_is_refused(tmp_path: Path, data_dir: Path, capsys):
    card = tiny_card(tmp_path / "model")
    tiny_classifier(tmp_path / "model" / "tiny.onnx", seed=9)  # the file changed after the card was written
    assert cli_main(["finetune", "--feedback", str(feedback_folder(tmp_path / "fb", 20)), "--base", str(card)]) == 2
    assert "does not match its model card" in capsys.readouterr().err


# --- the recipe end to end on the tiny model ----------------------------------------------------------

NO_TORCH = """
import sys
class NoTorch:  # any attempt to import torch fails, as on an installation without the [train] extra
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is not installed")
sys.meta_path.insert(0, NoTorch())
from radassist.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_finetune_writes_a_new_inactive_version_with_its_card_without_torch(tmp_path: Path, data_dir: Path):
    card_path = trained_tiny_card(tmp_path / "model", tmp_path / "data")
    folder = feedback_folder(tmp_path / "fb", 40)
    run = subprocess.run([sys.executable, "-c", NO_TORCH, "finetune", "--feedback", str(folder), "--base",
                          str(card_path), "--validation-data", str(tmp_path / "data")],
                         capture_output=True, text=True, timeout=120)  # torch cannot be imported
    assert run.returncode == 0, run.stderr
    out = run.stdout
    (new_card_path,) = registry.user_models_dir().glob("*/*.card.json")
    card = json.loads(new_card_path.read_text())
    assert f"radassist models activate {new_card_path}" in out and "NOT active" in out and "WARNING" not in out
    assert card["sha256"] == sha256_of(new_card_path.with_name(card["file"]))
    assert card["model_id"].startswith("tiny-classifier-ft-") and card["version"].startswith("0.1+ft.")
    assert card["parent"]["model_id"] == "tiny-classifier" and card["lineage"][0]["version"] == "0.1"
    finetune = card["finetune"]
    assert finetune["data"]["labelled_images"] == 40 and finetune["data"]["patients"] == 40
    held = finetune["data"]["held_out_part"]
    assert held["images"] == 12 and held["labels"]["pneumonia"] == {"positive": 6, "negative": 6}
    assert finetune["per_label"]["viral_pattern"]["status"] == "unchanged"  # no viral labels in the feedback
    assert set(finetune["feedback_holdout"]) == {"pneumonia"}
    validation = finetune["original_validation"]
    assert validation["reachable"] and validation["images"] == 40 and validation["left_out_because_in_feedback"] == 0
    assert validation["per_label"]["pneumonia"]["before"]["auroc"] > 0.9 and validation["regression"]["ok"]
    assert card["metrics"]["per_label"]["pneumonia"] == validation["per_label"]["pneumonia"]["after"]
    assert finetune["onnx_vs_numpy_head_max_abs_diff"] < 1e-4
    versions = {v.model_id: v for v in registry.list_versions()}
    assert not versions[card["model_id"]].active  # never activated automatically
    assert [p.name for p in registry.user_models_dir().iterdir()] == [card["model_id"]]  # no staging left


def test_feedback_that_contradicts_the_validation_split_is_flagged(tmp_path: Path, data_dir: Path, capsys):
    """Relabelled cases with every label inverted (a labelling bug, or a worklist of only the model's
    errors) teach the head the opposite of what it knew: the version is written but flagged."""
    card_path = trained_tiny_card(tmp_path / "model", tmp_path / "data")
    folder = feedback_folder(tmp_path / "fb", 40, final=lambda i: f"pneumonia={1 - i % 2}")
    assert cli_main(["finetune", "--feedback", str(folder), "--base", str(card_path),
                     "--validation-data", str(tmp_path / "data")]) == 0
    assert "WARNING: original-validation AUROC fell" in capsys.readouterr().out
    (new_card_path,) = registry.user_models_dir().glob("*/*.card.json")
    validation = json.loads(new_card_path.read_text())["finetune"]["original_validation"]
    pneumonia = validation["per_label"]["pneumonia"]
    assert pneumonia["before"]["auroc"] > 0.9 and pneumonia["after"]["auroc"] < 0.5
    assert not validation["regression"]["ok"] and "pneumonia" in validation["regression"]["labels_over_limit"]
