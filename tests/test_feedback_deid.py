"""De-identification details: consistent pseudonyms, interval-preserving date shifts, consistent UIDs,
the resolved action per attribute, and free-text scrubbing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pydicom
import pytest
from pydicom.valuerep import validate_value

from radassist.feedback.deid import (
    DeidOutcome,
    Pseudonymizer,
    deidentify,
    parse_date,
    parse_time,
    resolve_action,
)
from radassist.feedback.scrub import name_tokens, scrub_text

CR = "dicom/dcmfx_test_assets/fo-dicom/CR-MONO1-10-chest.dcm"
SECRET = b"k" * 32


def _copy(shared_data: Path, *, patient: str, study_date: str, study_uid: str) -> pydicom.Dataset:
    ds = pydicom.dcmread(shared_data / CR, force=True)
    ds.PatientID, ds.PatientName, ds.StudyDate, ds.StudyTime = patient, f"{patient}^Test", study_date, "235930"
    ds.StudyInstanceUID = study_uid
    return ds


def test_same_patient_same_pseudonym_and_offset_intervals_kept(shared_data: Path):
    pseudonymizer = Pseudonymizer(SECRET)
    first = _copy(shared_data, patient="P-1", study_date="20200101", study_uid="1.2.3.4.5")
    later = _copy(shared_data, patient="P-1", study_date="20200111", study_uid="1.2.3.4.5")
    other = _copy(shared_data, patient="P-2", study_date="20200101", study_uid="1.2.3.4.6")
    outcomes = [deidentify(ds, pseudonymizer, fallback_patient_key="x") for ds in (first, later, other)]
    assert outcomes[0].patient_pseudonym == outcomes[1].patient_pseudonym != outcomes[2].patient_pseudonym
    assert first.PatientID == later.PatientID == outcomes[0].patient_pseudonym
    day = lambda ds: datetime.strptime(ds.StudyDate, "%Y%m%d")  # noqa: E731
    assert (day(later) - day(first)).days == 10  # the interval survives
    shift_years = (datetime(2020, 1, 1) - day(first)).days / 365.25
    assert 1 <= shift_years <= 10
    assert first.StudyTime != "235930" and len(first.StudyTime) == 6
    assert first.StudyInstanceUID == later.StudyInstanceUID != other.StudyInstanceUID  # consistent UIDs
    for ds in (first, other):
        assert ds.StudyInstanceUID.startswith("2.25.") and validate_value("UI", ds.StudyInstanceUID, 2) is None
        assert ds.PatientIdentityRemoved == "YES"


def test_legacy_dates_and_times_are_parsed_before_shifting(shared_data: Path):
    ds = pydicom.dcmread(shared_data / CR, force=True)  # dates like "1995.07.20", times like "11:22:07"
    assert str(ds.InstanceCreationDate) == "1995.07.20"
    outcome: DeidOutcome = deidentify(ds, Pseudonymizer(SECRET), fallback_patient_key="cr")
    assert outcome.shifted >= 2
    assert parse_date(ds.InstanceCreationDate) is not None and "." not in ds.InstanceCreationDate
    assert parse_time(ds.InstanceCreationTime) is not None and ":" not in ds.InstanceCreationTime
    assert parse_date("1995.07.20").isoformat() == "1995-07-20" and parse_time("11:22:07").second == 7
    assert parse_date("not a date") is None and parse_time("25:99") is None


@pytest.mark.parametrize(("keyword", "expected"), [
    ("PatientName", "P"), ("PatientID", "P"),  # consistent pseudonym
    ("StudyDate", "C"), ("AcquisitionDateTime", "C"),  # shifted (Modified Dates Option)
    ("PatientBirthDate", "Z"), ("AccessionNumber", "Z"), ("ReferringPhysicianName", "Z"),  # Type 2: emptied
    ("InstitutionName", "X"), ("OperatorsName", "X"), ("PatientAge", "X"), ("DeviceSerialNumber", "X"),
    ("ClinicalTrialSponsorName", "X"),  # D in the table, optional in our IODs: removed
    ("StudyInstanceUID", "U"), ("FrameOfReferenceUID", "U"), ("DeviceUID", "X"),
    ("Rows", None), ("BodyPartExamined", None), ("ViewPosition", None),  # not in the table: kept
    # not in the table, but a person name, a date/time or free text: fail closed (removed) ...
    ("EvaluatorName", "X"), ("StudyUpdateDateTime", "X"), ("ExpiryDate", "X"),
    ("WindowCenterWidthExplanation", "X"), ("AcquisitionDeviceProcessingDescription", "X"),
    # ... unless it is a coded entry's part or the equipment's maker, kept on purpose
    ("CodeMeaning", None), ("CodeValue", None), ("Manufacturer", None),
])
def test_resolved_action_per_attribute(keyword: str, expected: str | None):
    tag = pydicom.datadict.tag_for_keyword(keyword)
    vr = pydicom.datadict.dictionary_VR(tag)
    assert resolve_action(tag, keyword, vr, top_level=True) == expected


def test_uids_inside_kept_sequences_are_replaced_not_removed():
    tag = pydicom.datadict.tag_for_keyword("ReferencedSOPInstanceUID")
    assert resolve_action(tag, "ReferencedSOPInstanceUID", "UI", top_level=False) == "U"


def test_free_text_scrubbing_keeps_findings_and_removes_identifiers():
    names = name_tokens("O'BRIEN^MARY ANN")
    text = ("Mary Ann O'Brien, DOB 03/04/1951, seen 12 March 2024. MRN: A1234567. Call 020 7946 0958 or "
            "mary@example.org. Dr. Smith reviewed. Right lower lobe consolidation, 3.5 cm. No effusion.")
    scrubbed = scrub_text(text, names=names, identifiers={"A1234567"})
    for leaked in ("Mary", "O'Brien", "1951", "March 2024", "A1234567", "7946", "example.org", "Smith"):
        assert leaked not in scrubbed, leaked
    assert "Right lower lobe consolidation, 3.5 cm. No effusion." in scrubbed


def test_unlisted_names_dates_and_text_are_removed_at_any_depth_and_codes_kept(shared_data: Path):
    """Fail-closed: attributes Table E.1-1 does not list, inside two levels of a sequence it does not list."""
    ds = _copy(shared_data, patient="P-9", study_date="20200101", study_uid="1.2.3.4.9")
    ds.EvaluatorName, ds.StudyUpdateDateTime, ds.ExpiryDate = "Evalname^Evalgiven", "20240102030405", "20250101"
    ds.WindowCenterWidthExplanation = "windowed by Jane Doe"
    inner = pydicom.Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "49755003", "SCT", "Morphologically abnormal"
    inner.EvaluatorName, inner.ExpiryDate, inner.WindowCenterWidthExplanation = "Deep^Name", "20250102", "Deep text"
    inner.add_new(0x00330010, "LO", "SOMEVENDOR")
    inner.add_new(0x00331001, "LO", "Private^Nested")
    outer = pydicom.Dataset()
    outer.CodeValue, outer.CodingSchemeDesignator, outer.CodeMeaning = "51185008", "SCT", "Chest"
    outer.AnatomicRegionModifierSequence = [inner]
    outer.ObservationDateTime = "20240101101010"
    ds.AnatomicRegionSequence = [outer]
    deidentify(ds, Pseudonymizer(SECRET), fallback_patient_key="x")
    for keyword in ("EvaluatorName", "StudyUpdateDateTime", "ExpiryDate", "WindowCenterWidthExplanation"):
        assert keyword not in ds, keyword
    kept_outer = ds.AnatomicRegionSequence[0]
    kept_inner = kept_outer.AnatomicRegionModifierSequence[0]
    assert "ObservationDateTime" not in kept_outer
    assert not any(k in kept_inner for k in ("EvaluatorName", "ExpiryDate", "WindowCenterWidthExplanation"))
    assert not any(element.tag.is_private for element in ds.iterall())
    assert (kept_outer.CodeMeaning, kept_inner.CodeValue) == ("Chest", "49755003")  # vocabulary survives


@pytest.mark.parametrize(("text", "leaked", "kept"), [
    ("Nodule per John Qzx Smith", ("John", "Qzx", "Smith"), "Nodule per [NAME]"),
    ("Discussed with Jane Doe on the ward.", ("Jane", "Doe"), "on the ward."),
    ("Patient John Q. Smith has RLL consolidation.", ("John", "Smith"), "has RLL consolidation."),
    ("Results called to Anna Berg at 14:00; son Tom informed.", ("Anna", "Berg", "Tom"), "informed."),
    ("Lesion seen by radiologist Peter Hall-Qzx.", ("Peter", "Hall"), "Lesion seen by"),
])
def test_names_without_titles_next_to_person_words_are_scrubbed(text, leaked, kept):
    scrubbed = scrub_text(text)
    assert not any(word in scrubbed for word in leaked), scrubbed
    assert kept in scrubbed


@pytest.mark.parametrize("text", [
    "Consistent with Pneumonia.", "Compared with CT of the chest.", "Per protocol, PA view.",
    "Patient is rotated. Right lower lobe consolidation.", "No change from Monday.",
    "Appearances identical to the recorded prior study.",
])
def test_clinical_text_without_names_is_left_alone(text):
    assert scrub_text(text) == text
