"""A `ReadResult` as JSON-ready data: what `radassist read --json` prints and every batch row holds.

In the pipeline layer (not the CLI) because `radassist.batch` writes it too, and the draft report's form
comes from `radassist.findings`.
"""

from __future__ import annotations

from pathlib import Path

from radassist.results import DomainVerdict, ReadResult


def result_to_dict(result: ReadResult) -> dict:
    """JSON-ready view of a ReadResult (maps are summarised, not dumped)."""
    findings = [{
        "label": f.label, "name": f.display_name, "probability": round(f.probability, 4),
        "threshold": round(f.threshold, 4), "status": "positive" if f.positive else "negative",
        "conditional_on": f.conditional_on, "zone": f.zone,
        "peak_row_col": list(f.peak_rc) if f.peak_rc else None,
        "evidence": [s.text for s in f.evidence],
    } for f in result.findings]
    report = None
    if result.report is not None:
        from radassist.findings.report import report_as_dict

        report = report_as_dict(result.report)
    return {
        "file": Path(result.meta.source_path).name,
        "qa": {"accepted": result.qa.accepted, "reason": result.qa.reason, "checks": result.qa.checks,
               "validated_use": _domain_dict(result.qa.domain)},
        "model": {"id": result.model_id, "sha256": result.model_sha256, "provider": result.provider},
        "findings": findings,
        "radiomics": {"evidence": sorted({s.text for f in result.findings for s in f.evidence}),
                      "table": result.radiomics_table},
        "report": report,
        # e.g. cardiothoracic_ratio: points = heart line ends, then thorax line ends, (row, column) image pixels
        "measurements": {kind.value: {"value": m.value, "unit": m.unit, "note": m.note,
                                      "points_row_col": [list(point) for point in m.points]}
                         for kind, m in result.measurements.items()},
        "timings_ms": result.timings_ms,
    }


def _domain_dict(domain: DomainVerdict | None) -> dict | None:
    """Inside / outside the model's validated use, the notice shown to the reader, and the age group used."""
    if domain is None:
        return None
    return {"inside": domain.inside, "notice": domain.notice,
            "age_group": domain.age_group.value if domain.age_group else None, "age_source": domain.age_source.value}
