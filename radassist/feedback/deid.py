"""De-identify a DICOM dataset per PS3.15 Annex E: the Basic Application Level Confidentiality Profile
with the Retain Longitudinal Temporal Information with Modified Dates Option.

Why this shape: the table of attribute actions is data (basic_profile.py, Table E.1-1); this module is
the engine that applies it, plus the few choices the standard leaves to the de-identifier, written
below as data too, so a reviewer can check each choice against the standard:

- An attribute the image IODs we write (CR, DX, Secondary Capture) do not require is removed, whatever
  the table's letter (D, Z, X or a multi-choice): the strictest choice. A required one is emptied (Z),
  or gets a dummy (D) where the table allows no empty value; the patient's name and id get a
  consistent pseudonym (a D value).
- Modified Dates Option: the study, series, acquisition and image dates/times are shifted (C) by a
  per-patient secret offset (whole days for dates, whole seconds for times), so intervals between a
  patient's studies survive; other dates are removed. Birth date/time follow the Basic Profile.
- UIDs (U) are replaced by 2.25 UIDs made from a keyed hash: the same original UID always gets the
  same replacement, so references between exported objects still resolve.
- Private attributes, curves, whole overlay planes and public attributes no dictionary knows are
  removed; group lengths (retired) are dropped.
- Fail-closed for what the table does not list: every person name (PN), every date or time (DA, DT,
  TM) and every free-text value (LO, LT, ST, UT, SH, UC) that is not on the short list of values kept
  on purpose (KEPT_UNLISTED_TEXT: coded-entry parts and equipment names) is removed, or emptied where
  the image IODs require it, at any depth of nesting. A newer edition of the standard or a vendor
  that puts a name or a date somewhere unexpected (EvaluatorName, StudyUpdateDateTime, ExpiryDate, a
  name typed into a code meaning's neighbour) therefore loses it instead of exporting it.

Limits: pixel data are not examined. Images flagged BurnedInAnnotation=YES are reported so the export
can leave them out; an image that has burned-in text but does not say so is not detected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radassist.feedback.basic_profile import BASIC_PROFILE, BASIC_PROFILE_PATTERNS, EDITION
from radassist.feedback.identity import keyed_digest

# --- the de-identifier's choices, as data ------------------------------------------------------

# The table's action (single or multi-choice) -> what we do, for an attribute the image IODs we write
# (CR, DX, Secondary Capture) require as Type 1 or 2: keep it, emptied (Z) or with a dummy value (D) ...
WHEN_REQUIRED = {"Z": "Z", "D": "D", "X/Z": "Z", "X/D": "D", "X/Z/D": "Z", "Z/D": "Z", "X/Z/U*": "Z"}
# ... and for every other attribute: remove it. Removal is the strictest choice; for D and Z it is
# stricter than the table asks, and safe because these IODs do not need the attribute. (Keeping dummy
# values had two costs: made-up data in the file, and modules left half-filled, e.g. a Clinical Trial
# module whose Type 1C attributes no longer satisfy their conditions, which the SR/SEG then copy.)
WHEN_OPTIONAL = "X"
REQUIRED_IN_IMAGE_IODS = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",  # Patient module, Type 2
    "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",  # General Study, Type 2
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",  # Type 1
    "ContentDate", "ContentTime",  # DX Image, Type 1 (2C in General Image)
})
# The patient's name and id get the patient's pseudonym (a D value): consistent across a patient's images.
PSEUDONYM_KEYWORDS = frozenset({"PatientName", "PatientID"})
# Retain Longitudinal Temporal Information with Modified Dates Option: the dates and times of the
# study, series, acquisition and image are shifted (C). Other dates the table lists (calibration,
# scheduling, verification, ...) are not needed by the image IODs: removed like any optional attribute.
# Birth date and time are not covered by the option (emptied, or removed).
TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})
SHIFTED_KEYWORDS = frozenset({
    "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime",
    "AcquisitionDateTime", "ContentDate", "ContentTime", "InstanceCreationDate", "InstanceCreationTime",
    "DateOfSecondaryCapture", "TimeOfSecondaryCapture",
})
# UIDs that tie objects together get a consistent replacement (U), and so does every UID inside a kept
# sequence (references); other top-level UIDs (device, RT, palette, ...) are optional here: removed.
LINKING_UIDS = frozenset({
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
    "SynchronizationFrameOfReferenceUID", "IrradiationEventUID", "ConcatenationUID",
    "DimensionOrganizationUID", "AcquisitionUID",
})
# Overlay planes (groups 60xx) are removed whole: the table removes their data and comments, and a
# plane left without its data would be an invalid Overlay Plane module.
REMOVED_GROUPS = range(0x6000, 0x6100)
# Public attributes that no dictionary knows (neither pydicom's nor the table) cannot be judged: removed.
REMOVE_UNKNOWN_PUBLIC = True
# Fail-closed: a value of these VRs that the table does not list is treated as PHI (removed, or emptied
# where the image IODs require the attribute) unless its keyword is in KEPT_UNLISTED_TEXT.
PERSON_NAME_VRS = frozenset({"PN"})
FREE_TEXT_VRS = frozenset({"LO", "LT", "ST", "UT", "SH", "UC"})
PHI_BY_DEFAULT_VRS = PERSON_NAME_VRS | TEMPORAL_VRS | FREE_TEXT_VRS
# The only unlisted text kept: the parts of a coded entry (vocabulary, not narrative: view, anatomy,
# de-identification method codes), the equipment's maker and model (needed to study domain shift), and
# the text our own export writes.
KEPT_UNLISTED_TEXT = frozenset({
    "CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning", "LongCodeValue",
    "Manufacturer", "ManufacturerModelName", "RescaleType", "DeidentificationMethod",
})

# Values the free-text scrubber removes when it meets them in a report (besides every person name).
IDENTIFIERS_FOR_TEXT_SCRUBBING = frozenset({
    "PatientID", "OtherPatientIDs", "IssuerOfPatientID", "AccessionNumber", "StudyID", "PatientBirthDate",
    "PatientAddress", "PatientTelephoneNumbers", "MedicalRecordLocator", "AdmissionID", "MilitaryRank",
    "InstitutionName", "InstitutionAddress",
})

DEIDENTIFICATION_METHOD = f"PS3.15 E.1 Basic Profile {EDITION}; Modified Dates Option"
DEIDENTIFICATION_CODES = (
    ("113100", "DCM", "Basic Application Confidentiality Profile"),
    ("113107", "DCM", "Retain Longitudinal Temporal Information Modified Dates Option"),
)
DUMMY_TEXT = "DEIDENTIFIED"
DUMMY_BY_VR: dict[str, object] = {
    "AE": "DEIDENTIFIED", "AS": "000D", "CS": "DEIDENTIFIED", "DS": "0", "IS": "0", "LO": DUMMY_TEXT,
    "LT": DUMMY_TEXT, "PN": "DEIDENTIFIED", "SH": DUMMY_TEXT, "ST": DUMMY_TEXT, "UC": DUMMY_TEXT, "UR": "",
    "UT": DUMMY_TEXT, "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "UL": 0, "US": 0, "SV": 0, "UV": 0,
    "UN": b"", "OB": b"", "OW": b"", "OD": b"", "OF": b"", "OL": b"", "OV": b"",
}


@dataclass(frozen=True)
class Pseudonymizer:
    """Consistent replacements derived from the installation secret (see identity.py)."""

    secret: bytes

    def uid(self, original: str) -> str:
        return "2.25." + str(int.from_bytes(keyed_digest(self.secret, "uid", original.strip())[:16], "big"))

    def patient(self, patient_key: str) -> str:
        return "RA" + keyed_digest(self.secret, "patient", patient_key).hex()[:10].upper()

    def reader(self, reader_id: str) -> str:
        return "reader-" + keyed_digest(self.secret, "reader", reader_id).hex()[:8]

    def date_shift(self, patient_key: str) -> tuple[timedelta, timedelta]:
        """(day offset, time-of-day offset): 1 to 10 years back, and 1 s to 24 h (never 0: times always change)."""
        digest = keyed_digest(self.secret, "date-shift", patient_key)
        days = 366 + int.from_bytes(digest[:4], "big") % 3285
        seconds = 1 + int.from_bytes(digest[4:8], "big") % 86399
        return timedelta(days=-days), timedelta(seconds=seconds)


@dataclass
class DeidOutcome:
    """What the export needs to know about a de-identified image (holds PHI only in memory)."""

    patient_pseudonym: str
    burned_in_annotation: str  # "YES", "NO" or "" (not stated)
    removed: int = 0
    shifted: int = 0
    replaced_uids: int = 0
    phi_names: set[str] = field(default_factory=set)  # person names seen, to scrub from free text
    phi_identifiers: set[str] = field(default_factory=set)  # ids and dates seen, idem


def patient_key_of(ds: Dataset, fallback: str) -> str:
    """What identifies the patient for pseudonyms and date offsets: the patient id, else the name."""
    for keyword in ("PatientID", "PatientName"):
        value = str(ds.get(keyword, "") or "").strip()
        if value:
            return f"{keyword}:{value}"
    return f"image:{fallback}"


def deidentify(ds: Dataset, pseudonymizer: Pseudonymizer, *, fallback_patient_key: str) -> DeidOutcome:
    """De-identify `ds` in place (pixels untouched) and mark it as de-identified."""
    key = patient_key_of(ds, fallback_patient_key)
    outcome = DeidOutcome(patient_pseudonym=pseudonymizer.patient(key),
                          burned_in_annotation=str(ds.get("BurnedInAnnotation", "") or "").upper())
    _collect_phi(ds, outcome)
    day_shift, time_shift = pseudonymizer.date_shift(key)
    engine = _Engine(pseudonymizer, outcome, day_shift, time_shift)
    engine.apply(ds, top_level=True)
    ds.PatientID = outcome.patient_pseudonym  # also where the source had none: SR, SEG and labels.csv agree
    ds.PatientName = f"{outcome.patient_pseudonym}^"
    ds.remove_private_tags()
    for tag in [t for t in ds.keys() if t.element == 0 and t.group != 0x0002]:
        del ds[tag]  # group lengths: retired
    _mark_deidentified(ds)
    if getattr(ds, "file_meta", None) is not None and "SOPInstanceUID" in ds:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                        "ReceivingApplicationEntityTitle", "PrivateInformation", "PrivateInformationCreatorUID"):
            if keyword in ds.file_meta:
                delattr(ds.file_meta, keyword)
    return outcome


def _collect_phi(ds: Dataset, outcome: DeidOutcome) -> None:
    """Every person name and the patient's identifiers, to scrub them from free text."""
    def visit(dataset: Dataset, element: DataElement) -> None:
        if not element.value:
            return
        values = element.value if element.VM > 1 else [element.value]
        if element.VR == "PN":
            outcome.phi_names.update(str(v) for v in values if str(v).strip())
        elif element.keyword in IDENTIFIERS_FOR_TEXT_SCRUBBING:
            outcome.phi_identifiers.update(str(v).strip() for v in values if str(v).strip())

    ds.walk(visit)


def _mark_deidentified(ds: Dataset) -> None:
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
    items = []
    for value, scheme, meaning in DEIDENTIFICATION_CODES:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED"


def profile_action(tag: int) -> str | None:
    """The Basic Profile's action for a tag (None when the table does not list it: keep)."""
    listed = BASIC_PROFILE.get(tag)
    if listed:
        return listed[0]
    for value, mask, action, _ in BASIC_PROFILE_PATTERNS:
        if tag & mask == value:
            return action
    return None


def resolve_action(tag: int, keyword: str, vr: str, *, top_level: bool) -> str | None:
    """The single action we take: one of X, Z, D, U, C, P (pseudonym), or None (keep)."""
    action = profile_action(tag)
    if action is None:
        if vr not in PHI_BY_DEFAULT_VRS or keyword in KEPT_UNLISTED_TEXT:
            return None
        action = "X"  # fail closed: an unlisted name, date/time or free text is PHI until shown otherwise
    if vr in TEMPORAL_VRS and keyword in SHIFTED_KEYWORDS:
        return "C"
    if keyword in PSEUDONYM_KEYWORDS:
        return "P"
    if vr == "UI" and action != "X" and (keyword in LINKING_UIDS or not top_level):
        return "U"
    if top_level and keyword in REQUIRED_IN_IMAGE_IODS:
        return WHEN_REQUIRED.get(action, "Z")
    return WHEN_OPTIONAL


class _Engine:
    """Applies resolved actions to a dataset and, recursively, to the items of its sequences."""

    def __init__(self, pseudonymizer: Pseudonymizer, outcome: DeidOutcome, day_shift: timedelta,
                 time_shift: timedelta):
        self.pseudonymizer = pseudonymizer
        self.outcome = outcome
        self.day_shift = day_shift
        self.time_shift = time_shift

    def apply(self, ds: Dataset, *, top_level: bool = False) -> None:
        for element in list(ds):
            if element.tag.is_private:
                continue  # removed wholesale afterwards
            action = resolve_action(int(element.tag), element.keyword, element.VR, top_level=top_level)
            unknown = REMOVE_UNKNOWN_PUBLIC and not element.keyword and action is None and element.tag.element != 0
            if element.tag.group in REMOVED_GROUPS or unknown:
                action = "X"
            if action == "X":
                del ds[element.tag]
                self.outcome.removed += 1
            elif element.VR == "SQ":
                self._sequence(element, action)
            elif action is not None and element.value not in (None, "", b""):
                self._replace(element, action)

    def _sequence(self, element: DataElement, action: str | None) -> None:
        if action == "Z":
            element.value = Sequence()
            return
        for item in element.value:  # keep (not listed), D or U: de-identify what is inside
            self.apply(item)

    def _replace(self, element: DataElement, action: str) -> None:
        if action == "Z":
            element.value = None
        elif action == "P":  # a name gets the pseudonym as family name, so it is a well-formed PN
            pseudonym = self.outcome.patient_pseudonym
            element.value = f"{pseudonym}^" if element.VR == "PN" else pseudonym
        elif action == "U":
            element.value = self._each(element, self.pseudonymizer.uid)
            self.outcome.replaced_uids += 1
        elif action == "C":
            element.value = self._each(element, self._shift(element.VR))
            self.outcome.shifted += 1
        elif action == "D":
            element.value = DUMMY_BY_VR.get(element.VR, DUMMY_TEXT)

    @staticmethod
    def _each(element: DataElement, change: Callable[[str], str]):
        if element.VM > 1:
            return [change(str(v)) for v in element.value]
        return change(str(element.value))

    def _shift(self, vr: str) -> Callable[[str], str]:
        return {"DA": self._shift_date, "TM": self._shift_time, "DT": self._shift_datetime}[vr]

    def _shift_date(self, value: str) -> str:
        parsed = parse_date(value)
        return (parsed + self.day_shift).strftime("%Y%m%d") if parsed else ""

    def _shift_time(self, value: str) -> str:
        parsed = parse_time(value)
        if parsed is None:
            return ""
        shifted = datetime.combine(date(2000, 1, 1), parsed) + self.time_shift
        return shifted.strftime("%H%M%S") + (f".{parsed.microsecond:06d}" if parsed.microsecond else "")

    def _shift_datetime(self, value: str) -> str:
        text = value.strip()
        offset = re.search(r"[+-]\d{4}$", text)
        core = text[: offset.start()] if offset else text
        parsed = parse_date(core[:8])
        if parsed is None:
            return ""
        clock = parse_time(core[8:]) if len(core) > 8 else None
        moment = datetime.combine(parsed, clock or datetime.min.time()) + self.day_shift
        if clock is None:
            return moment.strftime("%Y%m%d")
        moment += self.time_shift
        fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
        return moment.strftime("%Y%m%d%H%M%S") + fraction + (offset.group(0) if offset else "")


def parse_date(value: str) -> date | None:
    """DICOM DA, also the legacy ACR-NEMA forms "1995.07.20" and "1995-07-20"."""
    digits = re.sub(r"[.\-/ ]", "", value.strip())
    if not re.fullmatch(r"\d{8}", digits):
        return None
    try:
        return datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None


def parse_time(value: str):
    """DICOM TM (HH, HHMM, HHMMSS, HHMMSS.ffffff), also the legacy "11:22:07" form."""
    text = value.strip().replace(":", "")
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", text)
    if not match:
        return None
    hour, minute, second, fraction = match.groups()
    try:
        return datetime.min.time().replace(hour=int(hour), minute=int(minute or 0), second=int(second or 0),
                                           microsecond=int((fraction or "0").ljust(6, "0")))
    except ValueError:
        return None
