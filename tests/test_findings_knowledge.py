"""The knowledge graph: required nodes and relations, RadLex ids, model-label mapping, coverage of the
IU X-ray report vocabulary (shared data), and the compiled cache that spares each process rdflib."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import rdflib

from radassist.errors import ModelError
from radassist.findings import nlp_evaluation as ev
from radassist.findings.knowledge import (
    RELATIONS,
    KnowledgeGraph,
    default_graph_path,
    load_knowledge_graph,
    parse_turtle,
)
from radassist.findings.nlp import label_report
from radassist.imaging.lungs import ZONE_NAMES, zone_name

REQUIRED_FINDINGS = ("Opacity", "Consolidation", "GroundGlass", "Infiltrate", "Atelectasis", "PleuralEffusion",
                     "Pneumothorax", "Cardiomegaly", "PulmonaryEdema", "Nodule", "Mass", "Normal")
REQUIRED_LOCATIONS = ("Lungs", "RightLung", "LeftLung", "RightUpperZone", "RightMidZone", "RightLowerZone",
                      "LeftUpperZone", "LeftMidZone", "LeftLowerZone", "RightUpperLobe", "RightMiddleLobe",
                      "RightLowerLobe", "LeftUpperLobe", "Lingula", "LeftLowerLobe", "Pleura", "Heart")
REQUIRED_DIAGNOSES = ("Pneumonia", "BacterialPneumonia", "ViralPneumonia", "Covid19Pneumonia", "ARDS")
REQUIRED_PATTERNS = ("ViralPattern", "BacterialPattern", "Covid19Pattern")
MODEL_LABELS = ("pneumonia", "viral_pattern", "opacity")


@pytest.fixture(scope="module")
def graph():
    return load_knowledge_graph()


def test_required_nodes_exist_with_their_kind(graph):
    for key in REQUIRED_FINDINGS:
        assert graph.concept(key).is_a("Finding"), key
    for key in REQUIRED_LOCATIONS:
        assert any(graph.concept(key).is_a(k) for k in ("Location", "Zone", "Lobe")), key
    for key in REQUIRED_DIAGNOSES:
        assert graph.concept(key).is_a("Diagnosis"), key
    for key in REQUIRED_PATTERNS:
        assert graph.concept(key).is_a("Pattern"), key


def test_relations_are_present_and_point_where_they_should(graph):
    assert "Pneumonia" in [c.key for c in graph.differential("Opacity")]
    assert "Covid19Pneumonia" in [c.key for c in graph.differential("ViralPattern")]
    assert "Pleura" in [c.key for c in graph.located_in("Pneumothorax")]
    assert [c.key for c in graph.part_of("RightLowerZone")][:2] == ["RightLung", "Lungs"]
    assert "BacterialPattern" in [c.key for c in graph.excluded_by("ViralPattern")]
    assert {"Opacity", "Pneumothorax", "PleuralEffusion"} <= {c.key for c in graph.excluded_by("Normal")}
    assert "ViralPattern" in [c.key for c in graph.typical_patterns("ViralPneumonia")]
    assert "Opacity" in [c.key for c in graph.broader("Consolidation")]
    for relation in ("suggests", "locatedIn", "partOf", "excludes", "typicalPattern"):
        assert len(graph.relations(relation)) >= 3, relation
    assert ("Opacity", "Pneumonia") in graph.relations("suggests")


def test_synonyms_radiologists_write_are_labels(graph):
    assert "effusion" in graph.concept("PleuralEffusion").alt_labels
    assert "airspace disease" == graph.concept("AirspaceDisease").label
    assert "ptx" in [t.lower() for t in graph.concept("Pneumothorax").hidden_labels]
    assert "ground glass" in graph.concept("GroundGlass").alt_labels


def test_radlex_ids_are_ids_or_marked_unknown(graph):
    for concept in graph.concepts():
        if concept.kinds & {"Finding", "Pattern", "Diagnosis", "Location", "Zone", "Lobe"}:
            assert re.fullmatch(r"RID\d+|unknown", concept.radlex), (concept.key, concept.radlex)
    assert graph.concept("Pneumothorax").radlex == "RID5352"
    assert graph.concept("Lungs").radlex == "RID1301"
    assert graph.concept("Heart").radlex == "RID1385"
    assert graph.concept("Cardiomegaly").radlex == "unknown"  # no class found in RadLex: marked, not invented


def test_every_model_label_maps_to_exactly_one_node(graph, repo_root):
    labels = set(MODEL_LABELS)
    card = repo_root / "models" / "cxr_classifier.card.json"
    if card.is_file():
        labels |= {entry["id"] for entry in json.loads(card.read_text())["labels"]}
    for label in labels:
        owners = [c for c in graph.concepts() if c.model_label == label]
        assert len(owners) == 1, (label, owners)
    assert graph.node_for_model_label("viral_pattern").key == "ViralPattern"
    assert graph.model_label_of("Consolidation") == "opacity"  # rolls up through skos:broader


def test_every_zone_name_the_lung_module_produces_is_a_graph_zone(graph):
    for side in ("right", "left"):
        for index in range(len(ZONE_NAMES)):
            zone = graph.zone(zone_name(side, index))
            assert zone is not None and zone.is_a("Zone") and side in zone.label
    assert graph.zone("left base").key == "LeftLowerZone"
    assert graph.zone("somewhere odd") is None


def test_every_pattern_compiles_and_every_mesh_target_exists(graph):
    for concept in graph.mentionable():
        for pattern in concept.mention_patterns + concept.absent_patterns:
            re.compile(pattern)
    for rule in ev.load_mesh_map():
        assert graph.has(rule.finding), rule


def test_iu_vocabulary_is_covered(shared_data):
    """Coverage against the IU reports: how many MeSH tag mentions land on a graph node, and in how many
    tagged reports the graph's words for that finding appear at all (in any polarity)."""
    rows = ev.read_reports(shared_data / "iu_xray_reports" / "reports.csv")[:1500]
    rules = ev.load_mesh_map()
    tags = [t.strip() for row in rows for t in row["tags"].split(";")
            if t.strip() and t.strip().lower() not in ("normal", "no indexing")]
    mapped = sum(1 for t in tags if ev.gold_findings(t, rules))
    assert mapped / len(tags) >= 0.90, f"only {mapped}/{len(tags)} tag mentions map to graph nodes"

    named, tagged = Counter(), Counter()
    for row in rows:
        gold = ev.gold_findings(row["tags"], rules)
        if not gold:
            continue
        mentioned = {m.finding for m in label_report(ev.report_text(row)).mentions}
        for finding in gold - {"Normal"}:
            tagged[finding] += 1
            named[finding] += finding in mentioned
    assert sum(named.values()) / sum(tagged.values()) >= 0.95
    for finding, count in tagged.items():
        if count >= 20:
            assert named[finding] / count >= 0.6, (finding, named[finding], count)


# -- the compiled cache ----------------------------------------------------------------------------------
KINDS = (None, "Finding", "Pattern", "Diagnosis", "NormalStatement", "StudyStatement", "Measurement", "ReportHeading",
         "StudyVerdict", "Location", "Zone", "Lobe")


def answers(graph: KnowledgeGraph) -> dict:
    """Every public question asked of every node, so two graphs compare answer by answer."""
    found: dict = {("concepts", kind): graph.concepts(kind) for kind in KINDS}
    found["mentionable"] = graph.mentionable()
    found.update({("relations", name): graph.relations(name) for name in RELATIONS})
    for concept in graph.concepts():
        key = concept.key
        found[("concept", key)] = (graph.concept(key), graph.concept(concept.iri), graph.has(key))
        for question in ("broader", "differential", "typical_patterns", "excluded_by", "located_in", "part_of"):
            found[(question, key)] = getattr(graph, question)(key)
        found[("model_label_of", key)] = graph.model_label_of(key)
        found[("report_section", key)] = graph.report_section(key)
        if concept.model_label:
            found[("node_for_model_label", concept.model_label)] = graph.node_for_model_label(concept.model_label)
        for term in (*concept.terms, "somewhere odd"):
            found[("zone", term)] = graph.zone(term)
    return found


@pytest.fixture()
def turtle(tmp_path: Path, data_dir: Path) -> Iterator[Path]:
    """A private copy of cxr.ttl, a private cache folder (data_dir), and no graph left over in the process."""
    copy = tmp_path / "cxr.ttl"
    shutil.copyfile(default_graph_path(), copy)
    load_knowledge_graph.cache_clear()
    yield copy
    load_knowledge_graph.cache_clear()


def cache_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "cache" / "knowledge").glob("*"))


def reload(path: Path) -> KnowledgeGraph:
    """What a new process gets: nothing in memory, whatever is on disk."""
    load_knowledge_graph.cache_clear()
    return load_knowledge_graph(path)


def test_cached_graph_answers_exactly_like_the_parsed_one(turtle: Path, data_dir: Path):
    parsed = parse_turtle(turtle)
    assert cache_files(data_dir) == []
    load_knowledge_graph(turtle)
    assert len(cache_files(data_dir)) == 1
    cached = reload(turtle)
    assert answers(cached) == answers(parsed)
    assert {*REQUIRED_FINDINGS, *REQUIRED_LOCATIONS, *REQUIRED_DIAGNOSES} <= {c.key for c in cached.concepts()}

    # and the relations are the Turtle file's triples, checked with rdflib directly
    triples = rdflib.Graph().parse(turtle, format="turtle")
    keys = {c.key: c.iri for c in cached.concepts()}
    for name, predicate in RELATIONS.items():
        expected = {(s.split("#")[-1], o.split("#")[-1]) for s, o in triples.subject_objects(rdflib.URIRef(predicate))
                    if s.split("#")[-1] in keys and o.split("#")[-1] in keys}
        assert set(cached.relations(name)) == expected, name
        assert len(cached.relations(name)) == len(expected)


def test_a_warm_cache_spares_a_new_process_rdflib(data_dir: Path, repo_root: Path, graph: KnowledgeGraph):
    script = ("import json, sys\n"
              "from radassist.findings.knowledge import load_knowledge_graph\n"
              "g = load_knowledge_graph()\n"
              "print(json.dumps({'rdflib': 'rdflib' in sys.modules, 'concepts': [c.key for c in g.concepts()],\n"
              "                  'differential': [c.key for c in g.differential('Opacity')]}))\n")

    def run() -> dict:
        done = subprocess.run([sys.executable, "-c", script], cwd=repo_root, env=os.environ, capture_output=True,
                              text=True, timeout=120, check=True)
        return json.loads(done.stdout)

    cold, warm = run(), run()
    assert cold["rdflib"] is True  # nothing cached yet: parsed, and the cache written
    assert warm["rdflib"] is False
    for result in (cold, warm):
        assert result["concepts"] == [c.key for c in graph.concepts()]
        assert result["differential"] == [c.key for c in graph.differential("Opacity")]


def test_editing_the_turtle_file_changes_the_answer(turtle: Path, data_dir: Path):
    term = "fluid tracking into the costophrenic recess"
    assert term not in load_knowledge_graph(turtle).concept("PleuralEffusion").alt_labels
    with turtle.open("a", encoding="utf-8") as stream:
        stream.write(f'\nra:PleuralEffusion skos:altLabel "{term}" .\n')
    assert term in reload(turtle).concept("PleuralEffusion").alt_labels
    assert len(cache_files(data_dir)) == 2  # one compilation per content
    assert term in reload(turtle).concept("PleuralEffusion").alt_labels  # and from the cache too


def _drop_label(good: bytes) -> bytes:
    data = json.loads(good)
    del data["concepts"][0]["label"]
    return json.dumps(data).encode()


def _drop_concepts(good: bytes) -> bytes:
    return json.dumps({**json.loads(good), "concepts": []}).encode()


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda good: b"",
    "binary junk": lambda good: b"\x00\xff\xfe not json",
    "truncated": lambda good: good[: len(good) // 2],
    "not an object": lambda good: b"[1, 2, 3]",
    "a concept without its label": _drop_label,
    "relations naming missing nodes": _drop_concepts,
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_cache_is_ignored_and_rewritten(turtle: Path, data_dir: Path, corrupt: Callable[[bytes], bytes]):
    expected = answers(load_knowledge_graph(turtle))
    [cache_file] = cache_files(data_dir)
    good = cache_file.read_bytes()
    cache_file.write_bytes(corrupt(good))
    assert answers(reload(turtle)) == expected
    assert cache_files(data_dir) == [cache_file]  # no temporary file left behind
    assert cache_file.read_bytes() == good


@pytest.mark.parametrize("blocked", ["data folder is a file", "cache file name taken by a folder", "read-only folder"])
def test_an_unwritable_cache_still_loads(turtle: Path, data_dir: Path, blocked: str):
    expected = answers(parse_turtle(turtle))
    if blocked == "data folder is a file":
        data_dir.write_text("not a folder")
    elif blocked == "cache file name taken by a folder":
        load_knowledge_graph(turtle)
        [cache_file] = cache_files(data_dir)
        cache_file.unlink()
        cache_file.mkdir()  # readable and writable, but the finished file cannot be renamed onto it
    else:
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (data_dir / "cache" / "knowledge").mkdir(parents=True)
        (data_dir / "cache" / "knowledge").chmod(0o500)
    try:
        assert answers(reload(turtle)) == expected
        if data_dir.is_dir():  # nothing cached and no temporary file left behind
            assert all(p.is_dir() for p in (data_dir / "cache" / "knowledge").iterdir())
    finally:
        if data_dir.is_dir():
            (data_dir / "cache" / "knowledge").chmod(0o700)  # so tmp_path can be removed


def test_invalid_turtle_is_a_model_error_and_is_not_cached(turtle: Path, data_dir: Path):
    turtle.write_text("@prefix ra: <http://radassist.example/kg#> .\nra:Opacity ra:suggests ;; .\n")
    with pytest.raises(ModelError, match=r"the knowledge graph .*cxr\.ttl is not valid Turtle: "):
        load_knowledge_graph(turtle)
    assert cache_files(data_dir) == []


@pytest.mark.parametrize("literal, value", [("ra:ageGroup", '"elderly"'), ("ra:distribution", '"patchy"'),
                                            ("ra:reportSection", '"Abdomen"')])
def test_a_vocabulary_literal_outside_its_enum_is_a_model_error_naming_the_node(turtle: Path, data_dir: Path,
                                                                               literal: str, value: str):
    turtle.write_text(turtle.read_text() + f"\nra:Pneumonia {literal} {value} .\n")  # Pneumonia has none of the three
    unquoted = value.strip('"')
    with pytest.raises(ModelError, match=rf"gives Pneumonia the value '{unquoted}'; expected one of"):
        load_knowledge_graph(turtle)


def test_v2_labels_speak_in_their_anatomy_parts(graph):
    parts = {label: graph.report_section(graph.node_for_model_label(label).key)
             for label in ("opacity", "pneumonia", "viral_pattern", "atelectasis", "edema", "nodule_mass", "effusion",
                           "pneumothorax", "cardiomegaly")}
    assert parts == {"opacity": "Lungs", "pneumonia": "Lungs", "viral_pattern": "Lungs", "atelectasis": "Lungs",
                     "edema": "Lungs", "nodule_mass": "Lungs", "effusion": "Pleura", "pneumothorax": "Pleura",
                     "cardiomegaly": "Heart and mediastinum"}
    assert graph.node_for_model_label("abnormal").is_a("StudyVerdict")
    assert graph.report_section("SupportDevice") == "Lines and tubes" and graph.report_section("Fracture") == "Bones"
    assert graph.model_label_of("Nodule") == graph.model_label_of("Mass") == "nodule_mass"
