"""The chest X-ray knowledge graph (resources/knowledge/cxr.ttl): loading, cached, and the questions asked of it.

The report generator asks which node speaks for a model label, what a zone is called and what a finding
suggests; the report NLP asks for every term radiologists write. Both read the same graph, so a synonym
added to the Turtle file is written by one and understood by the other.

Importing rdflib and parsing the Turtle file cost about a quarter of a second, paid by the first draft report
of every process (viewer start, each CLI call, each batch worker). So the parsed graph is compiled to plain
data and kept as JSON in the user cache folder, named by the Turtle file's sha256; later processes read that
without importing rdflib, and editing the Turtle file changes the name, so a stale compilation is never read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from radassist.errors import ModelError
from radassist.paths import APP_NAME, resources_dir
from radassist.results import AgeGroup, AnatomySection  # AgeGroup: the values of ra:ageGroup

RA = "http://radassist.example/kg#"  # IRI prefix of RadAssist's own nodes and predicates
SKOS_PREFIX = "http://www.w3.org/2004/02/skos/core#"

# Node kinds a report can mention, as class local names. Measurements and report headings are recognised (so
# their words are not read as findings) but never labelled.
LABELLED_KINDS = ("Finding", "Pattern", "Diagnosis", "NormalStatement", "StudyStatement")
UNLABELLED_KINDS = ("Measurement", "ReportHeading")
MENTIONABLE_KINDS = (*LABELLED_KINDS, *UNLABELLED_KINDS)
LOCATION_KINDS = ("Location", "Zone", "Lobe")

# The node-to-node relations the questions below follow: predicate local name -> predicate IRI.
RELATIONS = {
    "broader": SKOS_PREFIX + "broader",
    "suggests": RA + "suggests",
    "typicalPattern": RA + "typicalPattern",
    "excludes": RA + "excludes",
    "locatedIn": RA + "locatedIn",
    "partOf": RA + "partOf",
}

# Part of every cache file's name: bump it when the compiled form, or how Turtle is read into it, changes.
CACHE_SCHEMA_VERSION = 2


class Spread(str, Enum):
    """ra:distribution: how far a pattern extends (lobar consolidation is focal, a viral pattern bilateral)."""

    FOCAL = "focal"
    BILATERAL = "bilateral"

# Relation local name -> subject key -> object keys, in the Turtle file's order.
Relations = Mapping[str, Mapping[str, Sequence[str]]]


def default_graph_path() -> Path:
    return resources_dir() / "knowledge" / "cxr.ttl"


def cache_dir() -> Path:
    """Where compiled graphs are kept: <RADASSIST_DATA_DIR>/cache/knowledge when that is set (tests, sites), else
    the platform's user cache folder. Created only when writing: a cache that cannot be written is not used."""
    override = os.environ.get("RADASSIST_DATA_DIR")
    if override:
        return Path(override) / "cache" / "knowledge"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME, appauthor=False)) / "knowledge"


@dataclass(frozen=True)
class Concept:
    """One node of the graph with the literals a reader needs, so callers never touch rdflib."""

    iri: str
    key: str  # the IRI's local name, e.g. "Opacity"
    kinds: frozenset[str]  # class local names: "Finding", "Pattern", "Diagnosis", "Zone", ...
    label: str  # skos:prefLabel
    alt_labels: tuple[str, ...]
    hidden_labels: tuple[str, ...]
    mention_patterns: tuple[str, ...]
    absent_patterns: tuple[str, ...]
    radlex: str  # "RID..." or "unknown"
    model_label: str | None
    definition: str | None
    priority: int | None  # differential order for diagnoses (1 first)
    incidental: bool  # named in reports but does not make a study abnormal (e.g. postsurgical change)
    report_section: str | None = None  # ra:reportSection: the FINDINGS part (an AnatomySection value)
    age_group: str | None = None  # ra:ageGroup: an AgeGroup value (the patients it is listed for), None for every age
    distribution: str | None = None  # ra:distribution: a Spread value

    @property
    def terms(self) -> tuple[str, ...]:
        """Every literal a report may use for this node (preferred, alternative and hidden labels)."""
        return (self.label, *self.alt_labels, *self.hidden_labels)

    def is_a(self, kind: str) -> bool:
        return kind in self.kinds


class KnowledgeGraph:
    """Read-only view of the graph, held as plain data. Build it with `load_knowledge_graph()` (cached)."""

    def __init__(self, concepts: Iterable[Concept], relations: Relations, source: Path):
        self.source = source
        self._concepts = {concept.key: concept for concept in concepts}
        self._relations = {name: {subject: tuple(targets) for subject, targets in relations[name].items()}
                           for name in RELATIONS}

    def _related(self, key: str, relation: str) -> list[Concept]:
        return [self._concepts[target] for target in self._relations[relation].get(self.concept(key).key, ())]

    # -- questions -----------------------------------------------------------------------------------
    def concept(self, key_or_iri: str) -> Concept:
        key = _local(key_or_iri)
        try:
            return self._concepts[key]
        except KeyError:
            raise KeyError(f"no node {key_or_iri!r} in the knowledge graph {self.source}") from None

    def has(self, key_or_iri: str) -> bool:
        return _local(key_or_iri) in self._concepts

    def concepts(self, kind: str | None = None) -> list[Concept]:
        found = [c for c in self._concepts.values() if kind is None or c.is_a(kind)]
        return sorted(found, key=lambda c: c.key)

    def mentionable(self) -> list[Concept]:
        """Nodes a report can mention: findings, patterns, diagnoses, normal statements and measurements."""
        return [c for c in self.concepts() if any(c.is_a(k) for k in MENTIONABLE_KINDS)]

    def node_for_model_label(self, label: str) -> Concept:
        """The node that speaks for a classifier label (ra:modelLabel)."""
        for concept in self._concepts.values():
            if concept.model_label == label:
                return concept
        raise KeyError(f"no knowledge-graph node has ra:modelLabel {label!r}")

    def model_label_of(self, key: str) -> str | None:
        """The classifier label a node counts towards: its own, else the nearest broader node's."""
        for concept in [self.concept(key), *self.broader(key)]:
            if concept.model_label:
                return concept.model_label
        return None

    def broader(self, key: str) -> list[Concept]:
        """All is-a ancestors (skos:broader, transitive), nearest first."""
        seen: list[Concept] = []
        frontier = self._related(key, "broader")
        while frontier:
            nxt = []
            for concept in frontier:
                if concept not in seen:
                    seen.append(concept)
                    nxt.extend(self._related(concept.key, "broader"))
            frontier = nxt
        return seen

    def differential(self, key: str) -> list[Concept]:
        """Diagnoses a finding or pattern suggests, most likely first (ra:priority, then label)."""
        suggested = self._related(key, "suggests")
        return sorted(suggested, key=lambda c: (c.priority if c.priority is not None else 99, c.label))

    def typical_patterns(self, key: str) -> list[Concept]:
        return sorted(self._related(key, "typicalPattern"), key=lambda c: c.key)

    def excluded_by(self, key: str) -> list[Concept]:
        """Nodes stated absent when `key` is asserted (ra:excludes)."""
        return sorted(self._related(key, "excludes"), key=lambda c: c.key)

    def report_section(self, key: str) -> str | None:
        """The FINDINGS part a node belongs to: its own ra:reportSection, else the first one found along
        its ra:locatedIn locations and their ra:partOf chains."""
        concept = self.concept(key)
        if concept.report_section:
            return concept.report_section
        for location in self._related(key, "locatedIn"):
            for place in [location, *self.part_of(location.key)]:
                if place.report_section:
                    return place.report_section
        return None

    def located_in(self, key: str) -> list[Concept]:
        return sorted(self._related(key, "locatedIn"), key=lambda c: c.key)

    def part_of(self, key: str) -> list[Concept]:
        """Enclosing locations, nearest first (ra:partOf is transitive)."""
        chain: list[Concept] = []
        parents = self._related(key, "partOf")
        while parents:
            parent = parents[0]
            if parent in chain:
                break
            chain.append(parent)
            parents = self._related(parent.key, "partOf")
        return chain

    def relations(self, relation: str) -> list[tuple[str, str]]:
        """Every (subject key, object key) pair of one relation named by its local name (a key of RELATIONS,
        e.g. "suggests"), subjects sorted, objects in file order."""
        return [(subject, target) for subject, targets in sorted(self._relations[relation].items())
                for target in targets]

    def zone(self, zone_text: str) -> Concept | None:
        """The zone or lobe node a free-text location names ("right lower zone", "left base"), if any."""
        wanted = " ".join(zone_text.lower().replace("-", " ").split())
        for concept in self.concepts():
            if any(concept.is_a(k) for k in LOCATION_KINDS) and wanted in (t.lower() for t in concept.terms):
                return concept
        return None


def _local(iri: object) -> str:
    text = str(iri)
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def parse_turtle(source: Path, data: bytes | None = None) -> KnowledgeGraph:
    """Read a Turtle file with rdflib: the one place rdflib is imported, so only a cache miss pays for it.

    `data` is the file's content when the caller has read it already (to hash it): the graph is then the one
    the hash names even if the file changes meanwhile.
    """
    from rdflib import RDF, Graph, Literal, Namespace, URIRef
    from rdflib.namespace import SKOS

    ra = Namespace(RA)
    graph = Graph()
    try:
        graph.parse(data=source.read_bytes() if data is None else data, format="turtle",
                    publicID=source.absolute().as_uri())
    except Exception as exc:  # rdflib raises several parser exception types
        raise ModelError(f"the knowledge graph {source} is not valid Turtle: {exc}") from exc

    def literals(subject: URIRef, predicate: URIRef) -> tuple[str, ...]:
        return tuple(sorted(str(o) for o in graph.objects(subject, predicate) if isinstance(o, Literal)))

    def read_concept(subject: URIRef) -> Concept:
        kinds = frozenset(_local(c) for c in graph.objects(subject, RDF.type) if str(c).startswith(RA))
        model_labels = literals(subject, ra.modelLabel)
        definitions = literals(subject, SKOS.definition)
        priority = graph.value(subject, ra.priority)
        return Concept(
            iri=str(subject),
            key=_local(subject),
            kinds=kinds,
            label=str(graph.value(subject, SKOS.prefLabel)),
            alt_labels=literals(subject, SKOS.altLabel),
            hidden_labels=literals(subject, SKOS.hiddenLabel),
            mention_patterns=literals(subject, ra.mentionPattern),
            absent_patterns=literals(subject, ra.absentPattern),
            radlex=str(graph.value(subject, ra.radlex) or "unknown"),
            model_label=model_labels[0] if model_labels else None,
            definition=definitions[0] if definitions else None,
            priority=int(priority) if priority is not None else None,
            incidental=bool(graph.value(subject, ra.incidental)),
            report_section=vocabulary_value(AnatomySection, graph.value(subject, ra.reportSection), subject),
            age_group=vocabulary_value(AgeGroup, graph.value(subject, ra.ageGroup), subject),
            distribution=vocabulary_value(Spread, graph.value(subject, ra.distribution), subject),
        )

    subjects = sorted(s for s in set(graph.subjects(SKOS.prefLabel, None))
                      if isinstance(s, URIRef) and str(s).startswith(RA))
    concepts = {concept.key: concept for concept in map(read_concept, subjects)}
    relations: dict[str, dict[str, list[str]]] = {name: {} for name in RELATIONS}
    for concept in concepts.values():
        for name, predicate in RELATIONS.items():
            objects = graph.objects(URIRef(concept.iri), URIRef(predicate))
            targets = [key for key in map(_local, objects) if key in concepts]
            if targets:
                relations[name][concept.key] = targets
    return KnowledgeGraph(concepts.values(), relations, source)


def vocabulary_value(vocabulary: type[Enum], value: object, subject: object) -> str | None:
    """A literal that must be one of an enum's values (None when absent); ModelError names the node otherwise."""
    if value is None:
        return None
    try:
        return vocabulary(str(value)).value
    except ValueError:
        allowed = ", ".join(repr(v.value) for v in vocabulary)
        raise ModelError(f"the knowledge graph gives {_local(subject)} the value {str(value)!r}; "
                         f"expected one of {allowed}") from None


def _to_json(graph: KnowledgeGraph) -> dict[str, Any]:
    concepts = [{**vars(c), "kinds": sorted(c.kinds)} for c in graph.concepts()]  # vars: asdict deep-copies
    relations = {name: dict(graph._relations[name]) for name in RELATIONS}
    return {"concepts": concepts, "relations": relations}


def _from_json(data: Any, source: Path) -> KnowledgeGraph:
    """The graph a cache file holds; KeyError or TypeError when the JSON is not a compiled graph."""
    tuple_fields = ("alt_labels", "hidden_labels", "mention_patterns", "absent_patterns")
    concepts = [Concept(**{**fields, **{name: tuple(fields[name]) for name in tuple_fields},
                           "kinds": frozenset(fields["kinds"])}) for fields in data["concepts"]]
    keys = {concept.key for concept in concepts}
    relations = data["relations"]
    for name in RELATIONS:
        for subject, targets in relations[name].items():
            if subject not in keys or not keys.issuperset(targets):
                raise KeyError(f"the cached {name} relation of {subject} names a node the cache does not hold")
    return KnowledgeGraph(concepts, relations, source)


def _read_cache(cache_file: Path, source: Path) -> KnowledgeGraph | None:
    """The compiled graph, or None when there is none or it cannot be read or is corrupt (it is then rewritten)."""
    try:
        with cache_file.open("rb") as stream:
            return _from_json(json.load(stream), source)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_cache(cache_file: Path, graph: KnowledgeGraph) -> None:
    """Write atomically (temporary file, then rename) so a concurrent reader never sees half a file. A folder
    that cannot be written (read-only home, full disk) only means the next process parses the Turtle again."""
    temp_name = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=cache_file.stem, suffix=".tmp", dir=cache_file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(json.dumps(_to_json(graph), ensure_ascii=False))  # dumps: C encoder, dump is not
        os.replace(temp_name, cache_file)
    except OSError:
        if temp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)


@functools.lru_cache(maxsize=4)
def load_knowledge_graph(path: str | Path | None = None) -> KnowledgeGraph:
    """Load the graph once per process: from its compiled cache (no rdflib), else by parsing the Turtle file
    (about 0.25 s with rdflib's import) and caching the result for the next process."""
    source = Path(path) if path is not None else default_graph_path()
    if not source.is_file():
        raise ModelError(f"the knowledge graph {source} is missing; reinstall RadAssist or restore the file")
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ModelError(f"the knowledge graph {source} cannot be read: {exc}") from exc
    cache_file = cache_dir() / f"kg-v{CACHE_SCHEMA_VERSION}-{hashlib.sha256(data).hexdigest()}.json"
    graph = _read_cache(cache_file, source)
    if graph is None:
        graph = parse_turtle(source, data)
        _write_cache(cache_file, graph)
    return graph
