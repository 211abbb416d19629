"""The knowledge graph: required nodes and relations, RadLex ids, model-label mapping, and coverage of the
IU X-ray report vocabulary (shared data)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from radassist.findings import nlp_evaluation as ev
from radassist.findings.knowledge import RA, load_knowledge_graph
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
    for predicate in (RA.suggests, RA.locatedIn, RA.partOf, RA.excludes, RA.typicalPattern):
        assert len(list(graph.graph.subject_objects(predicate))) >= 3, predicate


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
