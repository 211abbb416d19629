"""The findings commands: `radassist evaluate-nlp`, `radassist nlp`, `radassist report` (exit codes, outputs),
and the scoring arithmetic behind evaluate-nlp."""

from __future__ import annotations

import csv
import io
import itertools
import json

import pytest

from radassist.cli import main
from radassist.findings import nlp_evaluation as ev
from radassist.findings.nlp import ReportLabels


def test_evaluate_nlp_on_the_fixture_writes_metrics_and_errors(test_data, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["evaluate-nlp", "--reports", str(test_data / "findings" / "reports_small.csv"), "--out", str(out),
                 "--bootstrap", "200"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reports"] == 7 and metrics["reports_skipped_no_gold_or_no_text"] == 1  # "No Indexing"
    micro = metrics["micro"]
    assert micro["tp"] + micro["fn"] == sum(m["support"] for m in metrics["per_finding"].values())
    assert metrics["per_finding"]["Pneumonia"]["support"] == 1
    assert metrics["uncertain_policy"]["counted_as_predicted"] == ["present"]
    assert (out / "errors.txt").is_file()
    assert "micro-F1" in capsys.readouterr().out


def test_evaluate_nlp_on_a_slice_of_the_real_reports_is_sane(shared_data, tmp_path):
    source = shared_data / "iu_xray_reports" / "reports.csv"
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(itertools.islice(reader, 400))
        fields = reader.fieldnames
    sliced = tmp_path / "slice.csv"
    with sliced.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "eval"
    assert main(["evaluate-nlp", "--reports", str(sliced), "--out", str(out), "--bootstrap", "300"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    micro = metrics["micro"]
    assert 350 <= metrics["reports"] <= 400
    assert micro["f1"] >= 0.90, micro
    assert micro["f1_ci95"][0] <= micro["f1"] <= micro["f1_ci95"][1]
    assert micro["f1_ci95"][1] - micro["f1_ci95"][0] < 0.1
    for finding, m in metrics["per_finding"].items():
        assert m["support"] == m["tp"] + m["fn"], finding
    assert metrics["micro_if_uncertain_counted_positive"]["f1"] <= micro["f1"] + 0.02
    errors = (out / "errors.txt").read_text().splitlines()
    assert errors and errors[0].startswith("== ")


def test_metrics_arithmetic_on_hand_counted_reports():
    def scored(gold: set[str], labels: dict[str, str]) -> ev.ScoredReport:
        return ev.ScoredReport("x", gold, ReportLabels(labels=labels, model_labels={}), "")

    reports = [
        scored({"A"}, {"A": "present"}),  # A: TP
        scored({"A"}, {"A": "uncertain"}),  # A: FN (uncertain is not a prediction)
        scored(set(), {"A": "present", "B": "present"}),  # A: FP, B: FP
        scored({"B"}, {"B": "present"}),  # B: TP
    ]
    metrics = ev.compute_metrics(reports, ["A", "B"], n_bootstrap=50)
    a, b = metrics["per_finding"]["A"], metrics["per_finding"]["B"]
    assert (a["tp"], a["fp"], a["fn"]) == (1, 1, 1) and a["f1"] == 0.5
    assert (b["tp"], b["fp"], b["fn"]) == (1, 1, 0) and b["precision"] == 0.5 and b["recall"] == 1.0
    assert metrics["micro"]["f1"] == round(2 * 2 / (2 * 2 + 2 + 1), 4)
    lenient = ev.compute_metrics(reports, ["A", "B"], positive=("present", "uncertain"), n_bootstrap=50)
    assert lenient["per_finding"]["A"]["tp"] == 2


def test_mesh_tags_map_through_the_one_table():
    rules = ev.load_mesh_map()
    assert ev.gold_findings("Opacity/lung/base/left;Density/lung/hilum", rules) == {"Opacity"}
    assert ev.gold_findings("Lung/hypoinflation/mild;Lung/hyperdistention", rules) == {"LowLungVolumes", "Hyperinflation"}
    assert ev.gold_findings("Aorta/tortuous", rules) == {"TortuousAorta"}
    assert ev.gold_findings("Aorta/prominent", rules) == set()  # qualifier rule not met
    assert ev.gold_findings("No Indexing", rules) is None
    assert ev.gold_findings("normal", rules) == {"Normal"}


def test_nlp_command_reads_standard_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("FINDINGS: No pneumothorax. Small left pleural effusion."))
    assert main(["nlp", "-", "--no-mentions"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["labels"]["PleuralEffusion"] == "present" and payload["labels"]["Pneumothorax"] == "absent"
    assert "mentions" not in payload


def test_nlp_command_reads_a_file(tmp_path, capsys):
    report = tmp_path / "report.txt"
    report.write_text("IMPRESSION: Findings may represent pneumonia.", encoding="utf-8")
    assert main(["nlp", str(report)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["labels"]["Pneumonia"] == "uncertain" and payload["model_labels"]["pneumonia"] == "uncertain"


@pytest.mark.parametrize("argv", [
    ["report", "/no/such/image.dcm"],
    ["report", "/no/such/image.dcm", "--json"],
    ["nlp", "/no/such/report.txt"],
    ["evaluate-nlp", "--reports", "/no/such/reports.csv", "--out", "/tmp/radassist-never-written"],
])
def test_missing_input_exits_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("radassist: error:") and "no/such" in err[0]


def test_evaluate_nlp_refuses_a_csv_without_the_iu_columns(tmp_path, capsys):
    bad = tmp_path / "labels.csv"
    bad.write_text("file,labels\na.png,normal\n", encoding="utf-8")
    assert main(["evaluate-nlp", "--reports", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "lacks the column(s) id, findings, impression, tags" in capsys.readouterr().err


def test_nlp_refuses_an_empty_report(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n", encoding="utf-8")
    assert main(["nlp", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err


def test_report_command_on_a_bundled_sample(repo_root, capsys):
    if not (repo_root / "models" / "cxr_classifier.card.json").is_file():
        pytest.skip("the classifier is not bundled in this checkout yet (models/cxr_classifier.card.json)")
    sample = repo_root / "resources" / "samples" / "pediatric_viral_pneumonia.png"
    assert main(["report", str(sample), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["findings"] and payload["impression"]
    assert all(s["id"] and s["band"] for s in payload["sentences"])


def test_evaluate_nlp_scores_contiguous_parts_of_the_file(test_data, tmp_path):
    reports = test_data / "findings" / "reports_small.csv"
    counts = []
    for part in ("1/2", "2/2"):
        out = tmp_path / part.replace("/", "of")
        assert main(["evaluate-nlp", "--reports", str(reports), "--out", str(out), "--bootstrap", "50",
                     "--part", part]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["part"] == part
        counts.append(metrics["reports"] + metrics["reports_skipped_no_gold_or_no_text"])
    rows = ev.read_reports(reports)
    assert sum(counts) == len(rows) and abs(counts[0] - counts[1]) <= 1
    assert ev.part_of(rows, "1/2") + ev.part_of(rows, "2/2") == rows


@pytest.mark.parametrize("part", ["3/2", "0/2", "half", "1/0"])
def test_evaluate_nlp_refuses_a_malformed_part(test_data, tmp_path, capsys, part):
    code = main(["evaluate-nlp", "--reports", str(test_data / "findings" / "reports_small.csv"),
                 "--out", str(tmp_path / "out"), "--part", part])
    assert code == 2
    assert capsys.readouterr().err.startswith("radassist: error: --part")
