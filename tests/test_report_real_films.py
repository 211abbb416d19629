"""Draft reports of real films (the bundled samples, a real DICOM with PatientAge, NIH adults and children with their
recorded ages, pediatric pneumonia films), read end to end by the real models, checked for what a radiologist would
refuse to sign: sides that contradict between the findings table, FINDINGS and IMPRESSION; percentages (radiomics) in
FINDINGS; a differential for the wrong age group; a conditional finding spoken of when its condition is negative;
an anatomy part missing or a part no output covers not marked "not assessed"."""

from __future__ import annotations

import copy
import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from radassist.findings.knowledge import load_knowledge_graph
from radassist.findings.report_checks import ProblemKind, report_problems
from radassist.io import read_image
from radassist.pipeline.read import read_radiograph
from radassist.results import AgeGroup, AnatomySection, ReadResult, ReportSentence

REPO = Path(__file__).resolve().parents[1]
SAMPLES = sorted((REPO / "resources" / "samples").glob("*.*[gm]"))  # .png and .dcm
NIH_ADULT_LABELS = ("No Finding", "Effusion", "Cardiomegaly", "Nodule", "Pneumothorax", "Consolidation", "Mass")
NIH_CHILDREN = 4
KERMANY_FILMS = 3


@dataclass
class Film:
    name: str
    result: ReadResult
    age_group: AgeGroup | None  # the patient's true age group: recorded age, or the data set's (None: unknown)


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
    for row in kermany:  # children (Kermany et al.: ages 1-5), age not in the file: QA estimates it
        found.append(Film(row["file"], _read(shared_data / "pediatric_pneumonia" / row["file"]), AgeGroup.PEDIATRIC))
    return found


SIDE = re.compile(r"\b(right|left)\b")


def test_real_reports_have_nothing_a_radiologist_would_refuse_to_sign(films):
    graph = load_knowledge_graph()
    for film in films:
        assert report_problems(film.result, graph) == [], film.name


def test_no_differential_for_the_other_age_group_than_the_patients(films):
    """Against the true age group, whether the read knew it from the header or estimated it from the image."""
    graph = load_knowledge_graph()
    restricted = {c.label: c.age_group for c in graph.concepts("Diagnosis") if c.age_group}
    assert {"neoplasm", "metastatic disease", "bronchiolitis"} <= set(restricted)
    for film in (f for f in films if f.age_group is not None):
        differential = " ".join(s.text for s in film.result.report.sentences if s.sentence_id == "impression-differential")
        wrong = [name for name, group in restricted.items() if name in differential and group != film.age_group.value]
        assert not wrong, (film.name, film.age_group, differential)


def test_the_real_films_exercise_every_check(films):
    """The films hold what each check looks at, so a clean result above means something."""
    sentences = [s for film in films for s in film.result.report.sentences]
    assert sum(bool(SIDE.search(s.text.lower())) for s in sentences) >= 10  # located sentences, both sections
    assert {s.section for s in sentences if SIDE.search(s.text.lower())} == {"FINDINGS", "IMPRESSION"}
    assert sum(len(f.evidence) for film in films for f in film.result.findings) > 0  # evidence kept out of FINDINGS
    with_differential = {film.age_group for film in films
                         if any(s.sentence_id == "impression-differential" for s in film.result.report.sentences)}
    assert {AgeGroup.ADULT, AgeGroup.PEDIATRIC} <= with_differential
    silent = [f for film in films for f in film.result.findings if not film.result.condition_met(f)]
    assert silent  # some film had a conditional output whose condition was negative


def test_the_checks_catch_each_problem_on_a_real_report(films):
    graph = load_knowledge_graph()
    film = next(f for f in films if f.age_group is AgeGroup.ADULT
                and any(SIDE.search(s.text.lower()) for s in f.result.report.sentences))
    result = copy.deepcopy(film.result)
    report = result.report
    located = next(s for s in report.sentences if SIDE.search(s.text.lower()) and s.source_label)
    located.text = located.text.replace("right", "LEFT").replace("left", "right").replace("LEFT", "left")
    report.sentences.append(ReportSentence("FINDINGS", "The right lung is 44% denser than the left lung.", None, None,
                                           None, None, "findings-radiomics", AnatomySection.LUNGS))
    report.sentences.append(ReportSentence("IMPRESSION", "Differential diagnosis includes bronchiolitis.", None, None,
                                           None, None, "impression-differential"))
    report.sentences = [s for s in report.sentences if s.anatomy is not AnatomySection.BONES]
    conditional = next((f for f in result.findings if f.conditional_on), None)
    if conditional is not None:
        result.finding(conditional.conditional_on).positive = False
        report.sentences.append(ReportSentence("IMPRESSION", "A viral pattern is possible.", None,
                                               conditional.label, None, None, "impression-x"))
    # a sentence of no finding naming both sides (the mirrored-film notice) has no table row to contradict
    report.sentences.append(ReportSentence("IMPRESSION", "The image may be mirrored left to right.", None, None,
                                           None, None, "impression-domain"))
    problems = report_problems(result, graph)
    assert [p.text for p in problems if p.kind is ProblemKind.SIDE_CONTRADICTION] == [
        f"{located.text} (findings table: {result.finding(located.source_label).zone or 'no zone'})"]
    kinds = {p.kind for p in problems}
    expected = {ProblemKind.SIDE_CONTRADICTION, ProblemKind.PERCENT_IN_FINDINGS, ProblemKind.AGE_DIFFERENTIAL,
                ProblemKind.ANATOMY_PART} | ({ProblemKind.CONDITIONAL_SPOKEN} if conditional is not None else set())
    assert kinds == expected


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
