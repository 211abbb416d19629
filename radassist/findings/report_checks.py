"""What a radiologist would refuse to sign in a draft report, checked on a finished read: sides that contradict
between the findings table and the text, percentages (radiomics) in FINDINGS, a conditional finding spoken of
when its condition is negative, a differential for another age group, an anatomy part neither spoken for nor
marked "not assessed". Used by the tests on real films and by scripts/check_reports.py on any folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from radassist.findings.film import age_group_of
from radassist.findings.knowledge import KnowledgeGraph, load_knowledge_graph
from radassist.findings.report import NOT_ASSESSED_BAND
from radassist.results import AnatomySection, ReadResult

_SIDE = re.compile(r"\b(right|left)\b")


class ProblemKind(str, Enum):
    SIDE_CONTRADICTION = "side contradiction"
    PERCENT_IN_FINDINGS = "percentage in FINDINGS"
    CONDITIONAL_SPOKEN = "conditional finding spoken of while its condition is negative"
    AGE_DIFFERENTIAL = "differential for another age group"
    ANATOMY_PART = "anatomy part missing or both spoken for and not assessed"


@dataclass(frozen=True)
class ReportProblem:
    kind: ProblemKind
    text: str  # the sentence (or part) at fault


def report_problems(result: ReadResult, graph: KnowledgeGraph | None = None) -> list[ReportProblem]:
    """Every problem of `result.report` (empty when the read has no report)."""
    report = result.report
    if report is None:
        return []
    graph = graph or load_knowledge_graph()
    problems = []
    for sentence in report.sentences:
        named = set(_SIDE.findall(sentence.text.lower()))
        finding = result.finding(sentence.source_label or "")
        # a sentence of no finding (the "may be mirrored" notice names both sides) has no table row to contradict
        if finding is not None and named and named != {finding.zone.split()[0] if finding.zone else None}:
            problems.append(ReportProblem(ProblemKind.SIDE_CONTRADICTION,
                                          f"{sentence.text} (findings table: {finding.zone or 'no zone'})"))
        if sentence.section == "FINDINGS" and "%" in sentence.text:
            problems.append(ReportProblem(ProblemKind.PERCENT_IN_FINDINGS, sentence.text))
    text = report.text().lower()
    for finding in result.findings:
        if result.condition_met(finding):
            continue
        name = graph.node_for_model_label(finding.label).label if _has_node(graph, finding.label) else finding.label
        if name.lower() in text or any(s.source_label == finding.label for s in report.sentences):
            problems.append(ReportProblem(ProblemKind.CONDITIONAL_SPOKEN, finding.label))
    age_group = age_group_of(result)
    restricted = {c.label: c.age_group for c in graph.concepts("Diagnosis") if c.age_group}
    for sentence in (s for s in report.sentences if s.sentence_id == "impression-differential"):
        wrong = [name for name, group in restricted.items()
                 if name in sentence.text and (age_group is None or group != age_group.value)]
        if wrong:
            problems.append(ReportProblem(ProblemKind.AGE_DIFFERENTIAL, f"{sentence.text} (age group: "
                                          f"{age_group.value if age_group else 'unknown'})"))
    for part in AnatomySection:
        said = [s for s in report.sentences if s.anatomy is part]
        if not said or (len(said) > 1 and any(s.band == NOT_ASSESSED_BAND for s in said)):
            problems.append(ReportProblem(ProblemKind.ANATOMY_PART, part.value))
    return problems


def _has_node(graph: KnowledgeGraph, label: str) -> bool:
    try:
        graph.node_for_model_label(label)
    except KeyError:
        return False
    return True
