"""Report text -> labels {present, absent, uncertain} per knowledge-graph finding.

Rules in the NegEx / pyConText tradition, no statistical model: sections are split on their headers,
sections into sentences, finding mentions are found with the graph's terms and patterns, and trigger
phrases (resources/knowledge/nlp_rules.json) around a mention decide whether it is negated, hedged or
history. The radiologist's final report thereby becomes labels for the feedback dataset.

Decisions (documented because they change what a label means):
- Only FINDINGS and IMPRESSION (or CONCLUSION, or an un-sectioned body) are read; INDICATION, HISTORY,
  COMPARISON and TECHNIQUE describe why the study was done, not what it shows.
- Hedges have two strengths. "possible" (may, could, possibly, cannot exclude, question of, suggestive
  of, differential includes...) gives `uncertain`. "probable" (likely, probably, consistent with,
  represents...) gives `present`: a radiologist who writes "probable atelectasis" commits to it.
  Alternatives named as such ("atelectasis versus infiltrate", "effusion and/or scarring") are `present`:
  both are named as what is seen. Measured on the IU reports (single-mention findings), the MeSH taggers
  indexed 77% of "versus" and 88% of "and/or" mentions, 92% after "consistent with", but 4% after "may",
  0% after "could" and 6% after "suggestive of".
- History: "history of", "status post" describe the past; such a mention says nothing about the image.
  "Again seen", "unchanged", "stable", "chronic", "old" describe what is visible now: present.
  "Resolved", "resolution of", "cleared" state the finding is gone: absent.
- A specific diagnosis also labels its broader diagnoses ("viral pneumonia" -> pneumonia).
- One finding, several mentions: present > uncertain > absent (a finding named anywhere as present is
  present). A normal statement ("the lungs are clear") marks the findings it excludes (ra:excludes) absent
  unless they are mentioned themselves.
- `Normal` (the study) is present when the report speaks about at least one finding or normal statement
  and no finding is present or uncertain (findings marked ra:incidental, such as postsurgical change, do
  not count); a report that names nothing gets no Normal label.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from radassist.findings.knowledge import UNLABELLED_KINDS, KnowledgeGraph, load_knowledge_graph
from radassist.paths import resources_dir

PRESENT, ABSENT, UNCERTAIN = "present", "absent", "uncertain"
_RANK = {PRESENT: 3, UNCERTAIN: 2, ABSENT: 1}

# Section headers we recognise, mapped to a canonical name. Only LABELLED_SECTIONS yield labels.
SECTION_ALIASES = {
    "findings": "FINDINGS", "finding": "FINDINGS", "report": "FINDINGS", "body": "FINDINGS",
    "impression": "IMPRESSION", "impressions": "IMPRESSION", "conclusion": "IMPRESSION",
    "conclusions": "IMPRESSION", "summary": "IMPRESSION", "opinion": "IMPRESSION",
    "indication": "INDICATION", "indications": "INDICATION", "reason for exam": "INDICATION",
    "history": "HISTORY", "clinical history": "HISTORY", "clinical information": "HISTORY",
    "comparison": "COMPARISON", "comparisons": "COMPARISON", "technique": "TECHNIQUE",
    "exam": "TECHNIQUE", "examination": "TECHNIQUE", "procedure": "TECHNIQUE",
    "recommendation": "RECOMMENDATION", "recommendations": "RECOMMENDATION",
}
LABELLED_SECTIONS = ("FINDINGS", "IMPRESSION")
NORMAL_KEY = "Normal"

_HEADER = re.compile(
    r"(?im)(?:^|(?<=\n)|(?<=\.\s)|(?<=\.))\s*(" + "|".join(sorted(map(re.escape, SECTION_ALIASES), key=len, reverse=True))
    + r")\s*:"
)


def rules_path() -> Path:
    return resources_dir() / "knowledge" / "nlp_rules.json"


# ------------------------------------------------------------------------------------------------------
# Data objects
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    name: str  # canonical: FINDINGS, IMPRESSION, INDICATION, ...
    text: str


@dataclass(frozen=True)
class Mention:
    """One finding named in one sentence, with the verdict of the triggers around it."""

    finding: str  # knowledge-graph key, e.g. "PleuralEffusion"
    text: str  # the words that named it
    sentence: str  # the normalised sentence
    section: str
    status: str  # present | absent | uncertain | history
    trigger: str | None  # the phrase that decided the status (None when affirmed plainly)


@dataclass
class ReportLabels:
    """Labels of one report: per finding, and rolled up to the classifier's labels."""

    labels: dict[str, str]  # KG key -> present | absent | uncertain (unmentioned findings are left out)
    model_labels: dict[str, str]  # model label -> present | absent | uncertain
    mentions: list[Mention] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "labels": dict(sorted(self.labels.items())),
            "model_labels": dict(sorted(self.model_labels.items())),
            "mentions": [asdict(m) for m in self.mentions],
        }


# ------------------------------------------------------------------------------------------------------
# Text preparation
# ------------------------------------------------------------------------------------------------------
def split_sections(text: str) -> list[Section]:
    """Split on headers ("FINDINGS:", "Impression:"...). Text before any header is FINDINGS."""
    sections: list[Section] = []
    matches = list(_HEADER.finditer(text))
    head_end = matches[0].start() if matches else len(text)
    if text[:head_end].strip():
        sections.append(Section("FINDINGS", text[:head_end].strip()))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end():end].strip()
        if body:
            sections.append(Section(SECTION_ALIASES[match.group(1).lower()], body))
    return sections


_ENUMERATION = re.compile(r"(?:^|(?<=\s))\(?\d{1,2}[.)](?=\s|[A-Za-z])")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+|(?<=[a-z]{2})\.(?=[A-Z])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a section: full stops, semicolons, newlines and list numbers ("1.", "2)") end one."""
    text = re.sub(r"\bvs\.", "versus", text, flags=re.I)
    text = _ENUMERATION.sub("\n", text)
    parts = (p.strip(" .;") for p in _SENTENCE_END.split(text))
    return [p for p in parts if re.search(r"[A-Za-z]", p)]


def normalise(sentence: str) -> str:
    """Lower case, hyphens and slashes as spaces (except 'and/or'), one space between words."""
    text = sentence.lower().replace("and/or", " and/or ")
    text = re.sub(r"(?<=[a-z])[-/](?=[a-z])", " ", text)
    text = re.sub(r"[,()\[\]\"]", " , ", text)
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------------------
# Matching machinery built from the graph and the rules file
# ------------------------------------------------------------------------------------------------------
def _plural_forms(word: str) -> set[str]:
    forms = {word, word + "s", word + "es"}
    if word.endswith("y"):
        forms.add(word[:-1] + "ies")
    if word.endswith("sis"):
        forms.add(word[:-3] + "ses")
    if word.endswith("ax"):
        forms.update({word[:-2] + "aces", word + "es"})
    return forms


def _phrase_regex(phrases: list[str]) -> re.Pattern[str]:
    """One alternation, longest first, whole words only ("no" never matches inside "nodule")."""
    ordered = sorted(set(phrases), key=len, reverse=True)
    body = "|".join(re.escape(p) for p in ordered)
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])")


def _overlapping_phrase_regex(phrases: list[str]) -> re.Pattern[str]:
    """Like _phrase_regex, but reports the longest phrase starting at EVERY word, so overlapping terms
    ("aortic atherosclerotic" / "atherosclerotic vascular calcification") are all seen; group 1 is the match."""
    ordered = sorted(set(phrases), key=len, reverse=True)
    body = "|".join(re.escape(p) for p in ordered)
    return re.compile(rf"(?<![a-z0-9])(?=((?:{body}))(?![a-z0-9]))")


@dataclass(frozen=True)
class _Rules:
    negation_pre: re.Pattern[str]
    negation_post: re.Pattern[str]
    possible_pre: re.Pattern[str]
    possible_post: re.Pattern[str]
    probable_pre: re.Pattern[str]
    probable_post: re.Pattern[str]
    history_pre: re.Pattern[str]
    pseudo: re.Pattern[str]
    terminators: re.Pattern[str]
    negation_terminators: re.Pattern[str]


@dataclass(frozen=True)
class _Matcher:
    terms: re.Pattern[str]
    concepts_by_surface: dict[str, tuple[str, ...]]
    patterns: tuple[tuple[str, re.Pattern[str]], ...]  # (concept key, regex)
    absent_patterns: tuple[tuple[str, re.Pattern[str]], ...]
    statement_keys: frozenset[str]  # normal and study statements ("lungs are clear", "limited study"): always affirmed
    rules: _Rules


def _load_rules(path: Path) -> _Rules:
    data = json.loads(path.read_text(encoding="utf-8"))

    def rx(name: str) -> re.Pattern[str]:
        return _phrase_regex([normalise(p) if p not in ("?", ";", ":") else p for p in data[name]])

    return _Rules(**{name: rx(name) for name in _Rules.__dataclass_fields__})


@functools.lru_cache(maxsize=4)
def _matcher(graph_path: str) -> _Matcher:
    """Terms, patterns and triggers compiled once per graph file (about 0.5 s)."""
    graph = load_knowledge_graph(graph_path)
    surfaces: dict[str, set[str]] = {}
    patterns, absent_patterns = [], []
    for concept in graph.mentionable():
        for term in concept.terms:
            words = normalise(term).split()
            for last in _plural_forms(words[-1]):
                surfaces.setdefault(" ".join([*words[:-1], last]), set()).add(concept.key)
        for pattern in concept.mention_patterns:
            patterns.append((concept.key, re.compile(rf"(?<![a-z0-9])(?:{pattern})(?![a-z0-9])")))
        for pattern in concept.absent_patterns:
            absent_patterns.append((concept.key, re.compile(rf"(?<![a-z0-9])(?:{pattern})(?![a-z0-9])")))
    return _Matcher(
        terms=_overlapping_phrase_regex(list(surfaces)),
        concepts_by_surface={s: tuple(sorted(keys)) for s, keys in surfaces.items()},
        patterns=tuple(patterns),
        absent_patterns=tuple(absent_patterns),
        statement_keys=frozenset(
            c.key for c in graph.mentionable() if c.is_a("NormalStatement") or c.is_a("StudyStatement")
        ),
        rules=_load_rules(rules_path()),
    )


# ------------------------------------------------------------------------------------------------------
# Sentence analysis
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    keys: tuple[str, ...]
    from_pattern: bool = False  # matched by a regular expression rather than a literal term
    forced_status: str | None = None  # absent for ra:absentPattern matches


def _find_mentions(sentence: str, matcher: _Matcher) -> list[_Span]:
    """Term and pattern matches. A term lying inside a longer match is dropped ("opacity" inside
    "interstitial opacity"); pattern matches are all kept, as two patterns may describe one phrase
    ("the aorta is tortuous and calcified")."""
    candidates = [
        _Span(m.start(1), m.end(1), matcher.concepts_by_surface[m.group(1)]) for m in matcher.terms.finditer(sentence)
    ]
    for key, regex in matcher.patterns:
        candidates += [_Span(m.start(), m.end(), (key,), True) for m in regex.finditer(sentence)]
    for key, regex in matcher.absent_patterns:
        candidates += [_Span(m.start(), m.end(), (key,), True, ABSENT) for m in regex.finditer(sentence)]
    kept = []
    for span in candidates:
        inside_longer = not span.from_pattern and any(
            o.start <= span.start and span.end <= o.end and (o.end - o.start) > (span.end - span.start)
            for o in candidates
        )
        if not inside_longer:
            kept.append(span)
    return sorted(set(kept), key=lambda s: (s.start, s.end))


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "_" * (end - start)
    return "".join(chars)


@dataclass(frozen=True)
class _Trigger:
    start: int
    end: int
    text: str
    status: str  # history | absent | uncertain | present | terminator | negation_terminator
    direction: str  # pre | post | none


# Precedence when several triggers reach one mention: history > negation > possible > probable.
_TRIGGER_KINDS = (
    ("history_pre", "history", "pre"),
    ("negation_pre", ABSENT, "pre"),
    ("negation_post", ABSENT, "post"),
    ("possible_pre", UNCERTAIN, "pre"),
    ("possible_post", UNCERTAIN, "post"),
    ("probable_pre", PRESENT, "pre"),
    ("probable_post", PRESENT, "post"),
    ("terminators", "terminator", "none"),
    ("negation_terminators", "negation_terminator", "none"),
)
_SCOPE_ENDS = ("terminator", "negation_terminator")


def _find_triggers(masked: str, rules: _Rules) -> list[_Trigger]:
    """All trigger phrases of a sentence. A phrase inside a longer phrase of any kind is dropped, so
    "is not excluded" (possible) is not also read as "is not" (negation); a terminator sharing a word with a
    trigger is part of that trigger ("with a" in "consistent with a"), not the end of a scope."""
    found = [
        _Trigger(m.start(), m.end(), m.group(0), status, direction)
        for field_name, status, direction in _TRIGGER_KINDS
        for m in getattr(rules, field_name).finditer(masked)
    ]
    return [
        t for t in found
        if not any(o.start <= t.start and t.end <= o.end and (o.end - o.start) > (t.end - t.start) for o in found)
        and not (t.status in _SCOPE_ENDS
                 and any(o.status not in _SCOPE_ENDS and o.start < t.end and t.start < o.end for o in found))
    ]


def _in_scope(trigger: _Trigger, span: _Span, terminators: list[_Trigger]) -> bool:
    """A pre-trigger reaches forward, a post-trigger backward, until a terminator between them."""
    if trigger.direction == "pre":
        if trigger.end > span.start:
            return False
        lo, hi = trigger.end, span.start
    else:
        if trigger.start < span.end:
            return False
        lo, hi = span.end, trigger.start
    return not any(lo <= t.start and t.end <= hi for t in terminators)


def _status(span: _Span, sentence: str, triggers: list[_Trigger], statement: bool) -> tuple[str, str | None]:
    if span.forced_status:
        return span.forced_status, None
    if statement:
        return PRESENT, None  # "no acute disease", "limited study": the statement carries its own polarity
    inner = sentence[span.start:span.end]
    if re.search(r"(?<![a-z])(not|no|without)(?![a-z])", inner) and not inner.startswith(("no ", "not ", "without ")):
        return ABSENT, "negated inside the phrase"
    terminators = [t for t in triggers if t.status == "terminator"]
    negation_ends = [t for t in triggers if t.status in _SCOPE_ENDS]  # conjunctions end a negation only
    for _, status, direction in _TRIGGER_KINDS:
        if status in _SCOPE_ENDS:
            continue
        ends = negation_ends if status == ABSENT else terminators
        for trigger in triggers:
            if trigger.status == status and trigger.direction == direction and _in_scope(trigger, span, ends):
                return status, trigger.text
    return PRESENT, None


def _is_statement(span: _Span, matcher: _Matcher) -> bool:
    return all(key in matcher.statement_keys for key in span.keys)


def analyse_sentence(sentence: str, section: str = "FINDINGS", *, matcher: _Matcher | None = None) -> list[Mention]:
    """Every finding mention of one (raw) sentence with its status."""
    matcher = matcher or _matcher(str(load_knowledge_graph().source))
    text = normalise(sentence)
    spans = _find_mentions(text, matcher)
    if not spans:
        return []
    pseudo = [(m.start(), m.end()) for m in matcher.rules.pseudo.finditer(text)]
    # Normal statements stay visible to the triggers: "the lungs are clear of effusion" negates effusion.
    findings_only = [(s.start, s.end) for s in spans if not _is_statement(s, matcher)]
    masked = _mask(text, findings_only + pseudo)
    triggers = _find_triggers(masked, matcher.rules)
    mentions = []
    for span in spans:
        status, trigger = _status(span, text, triggers, _is_statement(span, matcher))
        for key in span.keys:
            mentions.append(Mention(key, text[span.start:span.end], text, section, status, trigger))
    return mentions


# ------------------------------------------------------------------------------------------------------
# Report level
# ------------------------------------------------------------------------------------------------------
def label_report(text: str, *, graph: KnowledgeGraph | None = None) -> ReportLabels:
    """Labels for one report text (with or without section headers)."""
    graph = graph or load_knowledge_graph()
    matcher = _matcher(str(graph.source))
    mentions: list[Mention] = []
    for section in split_sections(text):
        if section.name not in LABELLED_SECTIONS:
            continue
        for sentence in split_sentences(section.text):
            mentions += analyse_sentence(sentence, section.name, matcher=matcher)

    labels: dict[str, str] = {}
    for mention in mentions:
        if mention.status == "history" or any(graph.concept(mention.finding).is_a(k) for k in UNLABELLED_KINDS):
            continue
        for key in [mention.finding, *_broader_diagnoses(mention.finding, graph)]:
            current = labels.get(key)
            if current is None or _RANK[mention.status] > _RANK[current]:
                labels[key] = mention.status

    normal_stated = False
    for key, status in list(labels.items()):
        if status == PRESENT and graph.concept(key).is_a("NormalStatement"):
            normal_stated = True
            for excluded in graph.excluded_by(key):
                labels.setdefault(excluded.key, ABSENT)
    abnormal = any(
        status in (PRESENT, UNCERTAIN)
        and not graph.concept(key).is_a("NormalStatement")
        and not graph.concept(key).incidental
        for key, status in labels.items()
    )
    for key in [k for k in labels if graph.concept(k).is_a("NormalStatement") and not graph.concept(k).is_a("Finding")]:
        del labels[key]  # "lungs are clear" is a statement, not a finding: its effect is in the exclusions
    if labels or normal_stated:
        labels[NORMAL_KEY] = ABSENT if abnormal else PRESENT
    return ReportLabels(labels=labels, model_labels=roll_up_to_model_labels(labels, graph), mentions=mentions)


def _broader_diagnoses(key: str, graph: KnowledgeGraph) -> list[str]:
    """Naming a specific diagnosis names the general one: "viral pneumonia" is a pneumonia.
    Findings do not roll up here (a consolidation is reported as consolidation, not as opacity)."""
    if not graph.concept(key).is_a("Diagnosis"):
        return []
    return [c.key for c in graph.broader(key) if c.is_a("Diagnosis")]


def roll_up_to_model_labels(labels: dict[str, str], graph: KnowledgeGraph) -> dict[str, str]:
    """Per classifier label, the strongest label among the findings that count towards it (skos:broader).

    "Right lower lobe consolidation" is an `opacity` for the classifier, so the radiologist's words become
    training labels for the model's own outputs.
    """
    rolled: dict[str, str] = {}
    for key, status in labels.items():
        model_label = graph.model_label_of(key) if graph.has(key) else None
        if model_label is None:
            continue
        if model_label not in rolled or _RANK[status] > _RANK[rolled[model_label]]:
            rolled[model_label] = status
    return rolled
