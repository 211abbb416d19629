"""`radassist evaluate` on a 15-image real slice of the pediatric set, through the shipped ONNX model."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image

from radassist.cli import main

SLICE = "classifier/labels.csv"  # 5 NORMAL, 5 bacterial, 5 viral rows of ../shared/data/pediatric_pneumonia


@pytest.fixture(scope="module")
def evaluated(shared_data, test_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate")
    runs = {}
    for name, extra in (("as_is", []), ("square", ["--square-crop"])):
        code = main(["evaluate", "--labels", str(test_data / SLICE), "--images-root",
                     str(shared_data / "pediatric_pneumonia"), "--out", str(out / name), *extra])
        assert code == 0
        runs[name] = json.loads((out / name / "metrics.json").read_text())
    return runs, out


def test_metrics_have_aurocs_with_confidence_intervals_and_counts(evaluated):
    runs, out = evaluated
    metrics = runs["as_is"]
    assert metrics["images"] == 15 and metrics["skipped"] == []
    pneumonia = metrics["per_label"]["pneumonia"]
    assert (pneumonia["n_positive"], pneumonia["n_negative"]) == (10, 5)
    low, high = pneumonia["auroc_ci95"]
    assert 0 <= low <= pneumonia["auroc"] <= high <= 1
    for key in ("sensitivity", "specificity", "ece", "threshold"):
        assert 0 <= pneumonia[key] <= 1
    viral = metrics["per_label"]["viral_pattern"]
    assert (viral["n_positive"], viral["n_negative"]) == (5, 5)  # only pneumonia-positive images count
    assert viral["conditional_on"] == "pneumonia"
    assert 0 <= pneumonia["saliency_on_positives"]["border_energy"] <= 1
    for label in ("pneumonia", "viral_pattern"):
        for kind in ("roc", "reliability"):
            with Image.open(out / "as_is" / f"{kind}_{label}.png") as image:
                assert image.format == "PNG" and image.size[0] > 100


def test_square_centre_crops_score_like_the_images_as_they_are(evaluated):
    """The model's preprocessing is a centre square crop, so pre-cropping must not change anything."""
    runs, _ = evaluated
    assert runs["square"]["square_crop"] is True
    for label in ("pneumonia", "viral_pattern"):
        assert runs["square"]["per_label"][label]["auroc"] == pytest.approx(runs["as_is"]["per_label"][label]["auroc"])
        assert runs["square"]["per_label"][label]["ece"] == pytest.approx(runs["as_is"]["per_label"][label]["ece"],
                                                                          abs=1e-4)


def test_split_file_restricts_to_validation_rows(shared_data, test_data, tmp_path):
    rows = list(csv.DictReader(open(test_data / SLICE, encoding="utf-8")))
    split = tmp_path / "split.csv"
    with open(split, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "file", "split"])
        for index, row in enumerate(rows):
            writer.writerow(["classifier", row["file"], "validation" if index % 3 == 0 else "train"])
    code = main(["evaluate", "--labels", str(test_data / SLICE), "--images-root",
                 str(shared_data / "pediatric_pneumonia"), "--split-file", str(split), "--out", str(tmp_path / "o")])
    assert code == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["images"] == 5


def test_missing_csv_exits_2_with_one_line(tmp_path, capsys):
    assert main(["evaluate", "--labels", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("radassist: error:") and "nope.csv" in error and "\n" not in error


def test_csv_without_labels_column_exits_2(tmp_path, capsys):
    bad = tmp_path / "labels.csv"
    bad.write_text("file,finding\nimages/a.png,NORMAL\n")
    assert main(["evaluate", "--labels", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "labels" in capsys.readouterr().err
