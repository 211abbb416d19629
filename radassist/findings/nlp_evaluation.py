"""Score the report NLP against the MeSH `tags` of IU-X-ray-style reports (reports.csv).

Gold: a report's tags mapped to graph findings by the one table resources/knowledge/mesh_map.json.
Prediction: the NLP label `present`. `uncertain` counts as NOT predicted: the IU taggers mostly left
hedged mentions ("may represent atelectasis", "cannot exclude pneumonia") unindexed, so counting them as
positive would score the labeller against a convention the gold does not follow. The alternative
(uncertain counted as positive) is reported beside it so the choice is visible.
Only findings named in the table are scored; reports tagged "No Indexing" (no gold) and reports whose
FINDINGS and IMPRESSION are both empty (nothing to read) are skipped.
Confidence intervals: percentile bootstrap over reports (resampling whole reports keeps the labels of one
report together).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radassist.errors import InputRefused
from radassist.findings.nlp import PRESENT, UNCERTAIN, ReportLabels, label_report
from radassist.paths import resources_dir

REQUIRED_COLUMNS = ("id", "findings", "impression", "tags")
NO_GOLD_TAG = "no indexing"


def mesh_map_path() -> Path:
    return resources_dir() / "knowledge" / "mesh_map.json"


@dataclass(frozen=True)
class MeshRule:
    heading: str  # lower case
    qualifier: str | None  # lower case
    finding: str  # knowledge-graph key


def load_mesh_map(path: Path | None = None) -> list[MeshRule]:
    rows = json.loads((path or mesh_map_path()).read_text(encoding="utf-8"))["rows"]
    return [MeshRule(r["heading"].lower(), (r.get("qualifier") or "").lower() or None, r["finding"]) for r in rows]


def scored_findings(rules: list[MeshRule]) -> list[str]:
    return sorted({r.finding for r in rules})


def gold_findings(tags: str, rules: list[MeshRule]) -> set[str] | None:
    """Findings a report's tags name; None when the report was not indexed."""
    found: set[str] = set()
    for tag in (t.strip() for t in tags.split(";")):
        if not tag:
            continue
        heading, *qualifiers = [p.strip().lower() for p in tag.split("/")]
        if heading == NO_GOLD_TAG:
            return None
        for rule in rules:
            if rule.heading == heading and (rule.qualifier is None or rule.qualifier in qualifiers):
                found.add(rule.finding)
    return found


def report_text(row: dict[str, str]) -> str:
    """The two labelled sections of a reports.csv row as one report text."""
    return f"FINDINGS: {row.get('findings') or ''}\n\nIMPRESSION: {row.get('impression') or ''}"


def read_reports(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputRefused(f"the reports file {path} does not exist")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputRefused(f"{path.name} is not an IU-style reports file: it lacks the column(s) {', '.join(missing)}")
            return list(reader)
    except UnicodeDecodeError as exc:
        raise InputRefused(f"{path.name} is not a UTF-8 text CSV file") from exc


def part_of(rows: list[dict[str, str]], part: str) -> list[dict[str, str]]:
    """The K-th of N contiguous parts of the rows ("1/2" = the first half), in file order."""
    try:
        k, n = (int(v) for v in part.split("/"))
    except ValueError:
        raise InputRefused(f"--part must look like K/N (e.g. 1/2), not {part!r}") from None
    if not 1 <= k <= n:
        raise InputRefused(f"--part {part}: K must be between 1 and N")
    return rows[len(rows) * (k - 1) // n: len(rows) * k // n]


@dataclass
class ScoredReport:
    report_id: str
    gold: set[str]
    labels: ReportLabels
    text: str


def label_reports(rows: list[dict[str, str]], rules: list[MeshRule]) -> list[ScoredReport]:
    """Label every scorable row; rows without gold or without text are left out."""
    scored = []
    for row in rows:
        gold = gold_findings(row["tags"], rules)
        if gold is None or not ((row.get("findings") or "").strip() or (row.get("impression") or "").strip()):
            continue  # not indexed, or no text to read
        text = report_text(row)
        scored.append(ScoredReport(row["id"], gold, label_report(text), text))
    return scored


def _counts(reports: list[ScoredReport], findings: list[str], positive: tuple[str, ...]) -> np.ndarray:
    """(reports, findings, 3) array of true-positive, false-positive, false-negative indicators."""
    counts = np.zeros((len(reports), len(findings), 3), dtype=np.int32)
    for i, report in enumerate(reports):
        for j, finding in enumerate(findings):
            predicted = report.labels.labels.get(finding) in positive
            actual = finding in report.gold
            counts[i, j] = (predicted and actual, predicted and not actual, actual and not predicted)
    return counts


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.full(np.shape(tp), np.nan, dtype=float), where=denominator > 0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.shape(num), np.nan, dtype=float), where=den > 0)


def _ci(samples: np.ndarray) -> list[float | None]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return [None, None]
    return [round(float(np.percentile(finite, 2.5)), 4), round(float(np.percentile(finite, 97.5)), 4)]


def compute_metrics(reports: list[ScoredReport], findings: list[str], *, positive: tuple[str, ...] = (PRESENT,),
                    n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """Per-finding precision/recall/F1 and micro-F1, each with a bootstrap 95% CI."""
    counts = _counts(reports, findings, positive)
    total = counts.sum(axis=0)  # (findings, 3)
    rng = np.random.default_rng(seed)
    n = len(reports)
    weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_bootstrap)]).astype(np.float64)
    boot = (weights @ counts.reshape(n, -1).astype(np.float64)).reshape(n_bootstrap, len(findings), 3)
    boot_micro = boot.sum(axis=1)

    per_finding = {}
    for j, finding in enumerate(findings):
        tp, fp, fn = (int(v) for v in total[j])
        b_tp, b_fp, b_fn = boot[:, j, 0], boot[:, j, 1], boot[:, j, 2]
        per_finding[finding] = {
            "support": tp + fn, "tp": tp, "fp": fp, "fn": fn,
            "precision": _round(_ratio(np.array(tp), np.array(tp + fp))),
            "recall": _round(_ratio(np.array(tp), np.array(tp + fn))),
            "f1": _round(_f1(np.array(tp), np.array(fp), np.array(fn))),
            "precision_ci95": _ci(_ratio(b_tp, b_tp + b_fp)),
            "recall_ci95": _ci(_ratio(b_tp, b_tp + b_fn)),
            "f1_ci95": _ci(_f1(b_tp, b_fp, b_fn)),
        }
    tp, fp, fn = (int(v) for v in total.sum(axis=0))
    return {
        "reports": n,
        "micro": {
            "tp": tp, "fp": fp, "fn": fn,
            "precision": _round(_ratio(np.array(tp), np.array(tp + fp))),
            "recall": _round(_ratio(np.array(tp), np.array(tp + fn))),
            "f1": _round(_f1(np.array(tp), np.array(fp), np.array(fn))),
            "f1_ci95": _ci(_f1(boot_micro[:, 0], boot_micro[:, 1], boot_micro[:, 2])),
        },
        "per_finding": per_finding,
    }


def _round(value: np.ndarray) -> float | None:
    number = float(value)
    return None if np.isnan(number) else round(number, 4)


def error_lines(reports: list[ScoredReport], findings: list[str], per_finding_limit: int = 12) -> list[str]:
    """A readable list of disagreements: per finding, false positives then false negatives, with evidence."""
    lines = []
    for finding in findings:
        fps, fns = [], []
        for report in reports:
            label = report.labels.labels.get(finding)
            actual = finding in report.gold
            if label == PRESENT and not actual:
                fps.append(report)
            elif label != PRESENT and actual:
                fns.append(report)
        if not fps and not fns:
            continue
        lines.append(f"== {finding}: {len(fps)} false positive(s), {len(fns)} false negative(s)")
        for kind, group in (("FP", fps), ("FN", fns)):
            for report in group[:per_finding_limit]:
                label = report.labels.labels.get(finding) or "not mentioned"
                lines.append(f"  {kind} report {report.report_id} (NLP: {label}; gold: {', '.join(sorted(report.gold)) or '-'})")
                evidence = [m for m in report.labels.mentions if m.finding == finding]
                for m in evidence:
                    trigger = f" [{m.trigger}]" if m.trigger else ""
                    lines.append(f"      {m.status}{trigger}: {m.sentence}")
                if not evidence:
                    lines.append("      text: " + " ".join(report.text.split())[:400])
    return lines


def uncertain_policy_note() -> dict:
    return {
        "counted_as_predicted": [PRESENT],
        "not_counted": [UNCERTAIN, "absent", "not mentioned"],
        "why": "IU MeSH taggers mostly left hedged ('possible', 'may represent', 'cannot exclude') findings unindexed.",
    }
