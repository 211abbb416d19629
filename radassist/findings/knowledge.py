"""The chest X-ray knowledge graph (resources/knowledge/cxr.ttl): loading, cached, and the questions asked of it.

The report generator asks which node speaks for a model label, what a zone is called and what a finding
suggests; the report NLP asks for every term radiologists write. Both read the same graph, so a synonym
added to the Turtle file is written by one and understood by the other.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.namespace import SKOS

from radassist.errors import ModelError
from radassist.paths import resources_dir

RA = Namespace("http://radassist.example/kg#")

# Node kinds a report can mention, as class local names. Measurements are recognised but never labelled.
LABELLED_KINDS = ("Finding", "Pattern", "Diagnosis", "NormalStatement", "StudyStatement")
MENTIONABLE_KINDS = (*LABELLED_KINDS, "Measurement")
LOCATION_KINDS = ("Location", "Zone", "Lobe")


def default_graph_path() -> Path:
    return resources_dir() / "knowledge" / "cxr.ttl"


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

    @property
    def terms(self) -> tuple[str, ...]:
        """Every literal a report may use for this node (preferred, alternative and hidden labels)."""
        return (self.label, *self.alt_labels, *self.hidden_labels)

    def is_a(self, kind: str) -> bool:
        return kind in self.kinds


class KnowledgeGraph:
    """Read-only view of the graph. Build it with `load_knowledge_graph()` (cached)."""

    def __init__(self, graph: Graph, source: Path):
        self.graph = graph
        self.source = source
        self._concepts: dict[str, Concept] = {}
        for subject in set(graph.subjects(SKOS.prefLabel, None)):
            if isinstance(subject, URIRef) and str(subject).startswith(str(RA)):
                concept = self._read_concept(subject)
                self._concepts[concept.key] = concept

    # -- reading -------------------------------------------------------------------------------------
    def _literals(self, subject: URIRef, predicate: URIRef) -> tuple[str, ...]:
        return tuple(sorted(str(o) for o in self.graph.objects(subject, predicate) if isinstance(o, Literal)))

    def _read_concept(self, subject: URIRef) -> Concept:
        kinds = frozenset(_local(c) for c in self.graph.objects(subject, RDF.type) if str(c).startswith(str(RA)))
        model_labels = self._literals(subject, RA.modelLabel)
        definitions = self._literals(subject, SKOS.definition)
        priority = self.graph.value(subject, RA.priority)
        return Concept(
            iri=str(subject),
            key=_local(subject),
            kinds=kinds,
            label=str(self.graph.value(subject, SKOS.prefLabel)),
            alt_labels=self._literals(subject, SKOS.altLabel),
            hidden_labels=self._literals(subject, SKOS.hiddenLabel),
            mention_patterns=self._literals(subject, RA.mentionPattern),
            absent_patterns=self._literals(subject, RA.absentPattern),
            radlex=str(self.graph.value(subject, RA.radlex) or "unknown"),
            model_label=model_labels[0] if model_labels else None,
            definition=definitions[0] if definitions else None,
            priority=int(priority) if priority is not None else None,
            incidental=bool(self.graph.value(subject, RA.incidental)),
        )

    def _related(self, key: str, predicate: URIRef) -> list[Concept]:
        subject = URIRef(self.concept(key).iri)
        return [self._concepts[_local(o)] for o in self.graph.objects(subject, predicate) if _local(o) in self._concepts]

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
        frontier = self._related(key, SKOS.broader)
        while frontier:
            nxt = []
            for concept in frontier:
                if concept not in seen:
                    seen.append(concept)
                    nxt.extend(self._related(concept.key, SKOS.broader))
            frontier = nxt
        return seen

    def differential(self, key: str) -> list[Concept]:
        """Diagnoses a finding or pattern suggests, most likely first (ra:priority, then label)."""
        suggested = self._related(key, RA.suggests)
        return sorted(suggested, key=lambda c: (c.priority if c.priority is not None else 99, c.label))

    def typical_patterns(self, key: str) -> list[Concept]:
        return sorted(self._related(key, RA.typicalPattern), key=lambda c: c.key)

    def excluded_by(self, key: str) -> list[Concept]:
        """Nodes stated absent when `key` is asserted (ra:excludes)."""
        return sorted(self._related(key, RA.excludes), key=lambda c: c.key)

    def located_in(self, key: str) -> list[Concept]:
        return sorted(self._related(key, RA.locatedIn), key=lambda c: c.key)

    def part_of(self, key: str) -> list[Concept]:
        """Enclosing locations, nearest first (ra:partOf is transitive)."""
        chain: list[Concept] = []
        parents = self._related(key, RA.partOf)
        while parents:
            parent = parents[0]
            if parent in chain:
                break
            chain.append(parent)
            parents = self._related(parent.key, RA.partOf)
        return chain

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


@functools.lru_cache(maxsize=4)
def load_knowledge_graph(path: str | Path | None = None) -> KnowledgeGraph:
    """Parse the Turtle file once per process (about 0.1 s) and keep it."""
    source = Path(path) if path is not None else default_graph_path()
    if not source.is_file():
        raise ModelError(f"the knowledge graph {source} is missing; reinstall RadAssist or restore the file")
    graph = Graph()
    try:
        graph.parse(source, format="turtle")
    except Exception as exc:  # rdflib raises several parser exception types
        raise ModelError(f"the knowledge graph {source} is not valid Turtle: {exc}") from exc
    return KnowledgeGraph(graph, source)
