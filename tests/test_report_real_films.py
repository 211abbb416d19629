"""Draft reports of real films (the bundled samples, a real DICOM with PatientAge, NIH adults and children with their
recorded ages, pediatric pneumonia films), read end to end by the real models, checked for what a radiologist would
refuse to sign: sides that contradict between the findings table, FINDINGS and IMPRESSION; percentages (radiomics) in
FINDINGS; a differential for the wrong age group; a conditional finding spoken of when its condition is negative;
an anatomy part missing or a part no output covers not marked "not assessed"."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from radassist.findings.knowledge import AgeGroup, load_knowledge_graph
from radassist.findings.report import NOT_ASSESSED_BAND
from radassist.io import read_image
from radassist.pipeline.read import read_radiograph
from radassist.pipeline.result import AnatomySection, ReadResult

REPO = Path(__file__).resolve().parents[1]
SAMPLES = sorted((REPO / "resources" / "samples").glob("*.*[gm]"))  # .png and .dcm
NIH_ADULT_LABELS = ("No Finding", "Effusion", "Cardiomegaly", "Nodule", "Pneumothorax", "Consolidation", "Mass")
NIH_CHILDREN = 4
KERMANY_FILMS = 3


@dataclass
class Film:
    name: str
    result: ReadResult
    age_group: AgeGroup | None  # what the film's recorded age says (None: not recorded)


def _read(path: Path, age: float | None = None) -> ReadResult:
    image = read_image(path)
    if age is not None:  # the NIH age is in labels.csv, not in the JPEG: give it to the reader as DICOM would
        image.meta.patient_age_years = age
    return read_radiograph(image)


@pytest.fixture(scope="module")
def films(shared_data: Path) -> list[Film]:
    found = [Film(p.name, _read(p), None) for p in SAMPLES]
    dicom = shared_data / "dicom" / "pylibjpeg_data" / "RG1_J2KI.dcm"
    found.append(Film(dicom.name, _read(dicom), AgeGroup.ADULT))
    with (shared_data / "nih14" / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for label in NIH_ADULT_LABELS:
        row = next(r for r in rows if r["labels"] == label and int(r["age"]) >= 18)
        found.append(Film(row["file"], _read(shared_data / "nih14" / row["file"], float(row["age"])), AgeGroup.ADULT))
    children = [r for r in rows if int(r["age"]) < 18 and "Pneumonia" in r["labels"]][:NIH_CHILDREN]
    for row in children:
        found.append(Film(row["file"], _read(shared_data / "nih14" / row["file"], float(row["age"])),
                          AgeGroup.PEDIATRIC))
    with (shared_data / "pediatric_pneumonia" / "labels.csv").open(newline="", encoding="utf-8") as handle:
        kermany = [r for r in csv.DictReader(handle) if r["labels"] != "NORMAL"][:KERMANY_FILMS]
    for row in kermany:  # children (Kermany et al.: ages 1-5), age not recorded per film
        found.append(Film(row["file"], _read(shared_data / "pediatric_pneumonia" / row["file"]), None))
    return found


SIDE = re.compile(r"\b(right|left)\b")


def test_sides_agree_between_table_findings_and_impression(films):
    sided = 0
    for film in films:
        for sentence in film.result.report.sentences:
            named = set(SIDE.findall(sentence.text.lower()))
            if not named:
                continue
            sided += 1
            finding = film.result.finding(sentence.source_label or "")
            assert finding is not None and finding.zone, (film.name, sentence)
            table_side = finding.zone.split()[0]  # what the findings table shows
            assert named == {table_side}, (film.name, sentence.text, finding.zone)
    assert sided >= 10  # enough located sentences, in FINDINGS and IMPRESSION, to make the check mean something


def test_findings_hold_no_percentages_or_radiomics(films):
    evidence_read = 0
    for film in films:
        findings = film.result.report.section_text("FINDINGS")
        assert "%" not in findings and "density" not in findings and "heterogeneity" not in findings, (film.name,
                                                                                                       findings)
        evidence_read += sum(len(f.evidence) for f in film.result.findings)
    assert evidence_read > 0  # the evidence still exists: it is shown per finding and in read --json


def test_differentials_fit_the_age_group(films):
    graph = load_knowledge_graph()
    restricted = {c.label: c.age_group for c in graph.concepts("Diagnosis") if c.age_group}
    assert {"neoplasm", "metastatic disease", "bronchiolitis"} <= set(restricted)
    checked = {AgeGroup.ADULT: 0, AgeGroup.PEDIATRIC: 0, None: 0}
    for film in films:
        differential = " ".join(s.text for s in film.result.report.sentences if s.sentence_id == "impression-differential")
        named = {name for name in restricted if name in differential}
        if film.age_group is None:
            assert not named, (film.name, differential)  # unknown age: nothing age-restricted
        else:
            assert all(restricted[name] == film.age_group.value for name in named), (film.name, differential)
        checked[film.age_group] += bool(differential)
    assert all(checked.values()), checked  # each age group had films with a differential to check


def test_conditional_findings_are_silent_when_their_condition_is_negative(films):
    graph = load_knowledge_graph()
    silent = 0
    for film in films:
        for finding in film.result.findings:
            if film.result.condition_met(finding):
                continue
            silent += 1
            name = graph.node_for_model_label(finding.label).label
            assert not [s for s in film.result.report.sentences if s.source_label == finding.label], film.name
            assert name.lower() not in film.result.report.text().lower(), film.name
            assert finding not in film.result.flagged()
    assert silent > 0  # some film had a negative condition


def test_every_anatomy_part_is_spoken_for_or_marked_not_assessed(films):
    for film in films:
        report = film.result.report
        for part in AnatomySection:
            said = [s for s in report.sentences if s.anatomy is part]
            assert said, (film.name, part)
            not_assessed = [s for s in said if s.band == NOT_ASSESSED_BAND]
            assert not not_assessed or len(said) == 1, (film.name, part)  # never both
        if report.section_text("IMPRESSION").startswith("No acute abnormality"):
            assert not film.result.flagged(), film.name  # a normal statement only when nothing is positive


@pytest.mark.parametrize("elements, years", [
    ({"PatientAge": "045Y"}, 45.0),
    ({"PatientAge": "006M"}, 0.5),
    ({"PatientAge": "010W"}, round(70 / 365.25, 3)),
    ({"PatientAge": "003D", "PatientBirthDate": "19400305", "StudyDate": "20040826"}, round(3 / 365.25, 3)),
    ({"PatientBirthDate": "19400305", "StudyDate": "20040826"}, 64.476),
    ({"PatientAge": "45", "PatientBirthDate": "2020", "StudyDate": "20040826"}, None),  # malformed: ignored
    ({"PatientBirthDate": "20100101", "StudyDate": "20040826"}, None),  # born after the study
    ({}, None),
])
def test_patient_age_from_dicom_age_or_birth_date(elements, years):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from radassist.io.dicom import read_metadata

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = 8, 8
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    assert read_metadata(ds, Path("film.dcm")).patient_age_years == years


def test_a_real_dicom_gives_its_age_to_the_report(shared_data):
    image = read_image(shared_data / "dicom" / "pylibjpeg_data" / "RG1_J2KI.dcm")  # birth 1940-03-05, study 2004-08-26
    assert image.meta.patient_age_years == 64.476
