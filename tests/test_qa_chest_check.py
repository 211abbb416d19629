"""Input QA on real files: rotated, mirrored, grey-inverted and non-chest images are refused by the image itself
(the shipped chest-check ONNX model), upright films are read, and an age outside the validated range or an
unfamiliar image gets a visible "outside validated use" notice instead of silent findings."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from radassist.errors import InputRefused
from radassist.pipeline.read import ReadOptions, read_radiograph
from radassist.results import AgeGroup, AgeSource

QA_ONLY = ReadOptions(radiomics=False, report=False, enforce_qa=False)
SAMPLES = ("pediatric_viral_pneumonia.png", "adult_covid19_hannover.png", "pediatric_normal.png")


def _png(tmp_path, name: str, pixels: np.ndarray):
    path = tmp_path / name
    Image.fromarray(np.ascontiguousarray(pixels).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("sample", SAMPLES)
def test_upright_sample_is_accepted_and_its_copies_turned_or_inverted_are_refused(repo_root, tmp_path, sample):
    pixels = np.asarray(Image.open(repo_root / "resources" / "samples" / sample).convert("L"))
    assert read_radiograph(_png(tmp_path, "upright.png", pixels), QA_ONLY).qa.accepted
    probes = {"rotated 90": np.rot90(pixels, 1), "upside down": np.rot90(pixels, 2),
              "rotated 270": np.rot90(pixels, 3), "inverted": 255 - pixels}
    for name, probe in probes.items():
        result = read_radiograph(_png(tmp_path, f"{name}.png", probe), QA_ONLY)
        assert not result.qa.accepted, (sample, name, result.qa.checks)
        assert "chest check" in result.qa.reason and "upright" in result.qa.reason
        assert not result.findings  # nothing is read from a refused image


def test_refusal_is_one_input_refused_error_when_qa_is_enforced(repo_root, tmp_path):
    pixels = np.asarray(Image.open(repo_root / "resources" / "samples" / SAMPLES[0]).convert("L"))
    with pytest.raises(InputRefused, match="upside down"):
        read_radiograph(_png(tmp_path, "flipped.png", np.rot90(pixels, 2)))


@pytest.mark.parametrize("file, forge", [
    ("nhsx_nccid_test_data/sample.dcm", "chest"),  # abdominal scout (OT) claiming to be a chest CR
    ("dcmfx_test_assets/fo-dicom/CR-ModalitySequenceLUT.dcm", "strip"),  # dental CR, body part removed
    ("dcmfx_test_assets/fo-dicom/CR-ModalitySequenceLUT.dcm", "chest"),
])
def test_non_chest_radiograph_with_a_lying_header_is_refused_by_the_image(test_data, tmp_path, file, forge):
    dataset = pydicom.dcmread(test_data / "dicom" / file)
    if "BodyPartExamined" in dataset:
        del dataset.BodyPartExamined
    if forge == "chest":
        dataset.BodyPartExamined = "CHEST"
        dataset.Modality = "CR"
    path = tmp_path / "forged.dcm"
    dataset.save_as(path)
    result = read_radiograph(path, QA_ONLY)
    assert not result.qa.accepted, result.qa.checks


def _nih_with_age(test_data, tmp_path, age: str | None):
    source = test_data / "dicom" / "nhsx_nccid_test_data" / \
        "1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"
    dataset = pydicom.dcmread(source)
    for keyword in ("PatientAge", "PatientBirthDate"):
        if keyword in dataset:
            delattr(dataset, keyword)
    if age:
        dataset.PatientAge = age
    path = tmp_path / f"nih_{age}.dcm"
    dataset.save_as(path)
    return path


def test_adult_age_in_the_header_is_inside_the_validated_domain(test_data, tmp_path):
    result = read_radiograph(_nih_with_age(test_data, tmp_path, "045Y"), QA_ONLY)
    assert result.qa.accepted and result.qa.domain.inside, result.qa.domain
    assert result.qa.domain.age_group == AgeGroup.ADULT and result.qa.domain.age_source == AgeSource.HEADER


def test_an_infant_gets_an_outside_validated_use_notice_not_silent_findings(test_data, tmp_path):
    result = read_radiograph(_nih_with_age(test_data, tmp_path, "004M"), QA_ONLY)
    assert result.qa.accepted and result.findings  # shown, not refused...
    assert not result.qa.domain.inside  # ...but marked
    assert "Outside validated use" in result.qa.domain.notice and "0.3 years" in result.qa.domain.notice


def test_without_an_age_the_age_group_is_the_image_estimate(test_data, tmp_path, repo_root):
    adult = read_radiograph(_nih_with_age(test_data, tmp_path, None), QA_ONLY)
    assert adult.qa.domain.age_source == AgeSource.IMAGE_ESTIMATE and adult.qa.domain.age_group == AgeGroup.ADULT
    child = read_radiograph(repo_root / "resources" / "samples" / "pediatric_normal.png", QA_ONLY)
    assert child.qa.domain.age_group == AgeGroup.PEDIATRIC
