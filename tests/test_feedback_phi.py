"""No planted PHI survives the export: every byte of every output file is scanned.

Fake PHI is planted, at run time, into copies of two real chest radiographs (shared data, DICOM):
a unique value in EVERY attribute that PS3.15 Table E.1-1 (Basic Profile) lists and that can hold a
searchable value (text, dates, times, UIDs, numbers written as text, bytes, sequences with text
inside; also the 25 attributes newer than pydicom's dictionary, as UN), the repeating curve/overlay
groups, private tags (plain and in a private sequence), a file name made of the patient's name, a
reader id with a name, and a signed report that names the patient, the id and the birth date.
A third copy says BurnedInAnnotation=YES and must be left out.

Fail-closed cases (attributes the table does NOT list): a value in every current (non-retired) public
attribute of pydicom's dictionary whose VR holds a person name, a date/time or free text (PN, DA, DT, TM,
LO, LT, ST, UT, SH, UC), except the few kept on purpose (deid.KEPT_UNLISTED_TEXT), e.g. EvaluatorName,
StudyUpdateDateTime, ExpiryDate; the same kinds two levels deep in sequences the table does not list,
with a private element there too. The report also names people without a title ("results called to
<name>", "per <name>") and a referring physician by the name in the header only.

The scan reads every output file as bytes, plus the decompressed content of PNG chunks and the
decoded values of every DICOM element, and looks for each planted value (case-insensitive; numbers
only where not embedded in a longer number). The event store is scanned too: it must hold no PHI.
"""

from __future__ import annotations

import json
import re
import zlib
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import DicomDictionary, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from test_feedback_export import CR_DICOM, NIH_DICOM, dciodvfy, read_like_a_radiologist, require_dicom_tools

from radassist.feedback import EventStore
from radassist.feedback.basic_profile import BASIC_PROFILE
from radassist.feedback.deid import KEPT_UNLISTED_TEXT, PHI_BY_DEFAULT_VRS
from radassist.feedback.export import export_feedback
from radassist.feedback.store import sources_path_for
from radassist.io import read_image

PATIENT_FAMILY, PATIENT_GIVEN = "Phipatientsurname", "Fakegivenname"
PATIENT_ID = "PHIPID20240611"
BIRTH_DATE = "19500101"
READER = "dr.phireaderperson"
REFERRER_FAMILY, REFERRER_GIVEN = "Phireferrer", "Phirefgiven"  # named in the report without title or cue
UNTITLED_FIRST, UNTITLED_LAST = "Qzxcalledfirst", "Qzxcalledlast"  # "results called to <name>"
SKIPPED_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "AT", "US or SS", "OF", "OD", "OL", "OV"}


class Planter:
    """Unique fake values per VR, remembered as the needles the scan looks for."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.count = 0
        self.needles: dict[str, str] = {}  # needle -> where it was planted
        self.skipped: list[str] = []

    def value(self, vr: str, where: str):
        self.count += 1
        n = self.count
        tag = f"{self.prefix}{n:04d}"
        if vr == "PN":
            family, given = f"Phifam{tag}", f"Phigiv{tag}"
            self._remember(where, family, given)
            return f"{family}^{given}"
        if vr in ("LO", "SH", "LT", "ST", "UT", "UC"):
            return self._remember(where, f"PHIT{tag}X")
        if vr in ("CS", "AE"):
            return self._remember(where, f"PHIC{tag}")
        if vr == "DA":
            return self._remember(where, self._date(n))
        if vr == "TM":
            return self._remember(where, f"1011{n % 60:02d}.{n:06d}")
        if vr == "DT":
            return self._remember(where, f"{self._date(n)}1011{n % 60:02d}.{n:06d}")
        if vr == "UI":
            return self._remember(where, f"1.2.826.0.1.3680043.8.498.{7_000_000_000 + n * 7919}.{ord(self.prefix)}")
        if vr == "AS":
            return self._remember(where, f"{n % 90 + 10:03d}Y")
        if vr == "DS":
            return self._remember(where, f"{9000 + n}.1234567")
        if vr == "IS":
            return self._remember(where, f"{880_000_000 + n}")
        if vr == "UR":
            return self._remember(where, f"http://phi.invalid/PHIU{tag}")
        if vr in ("OB", "OW", "UN"):
            return self._remember(where, f"PHIB{tag}X").encode("ascii") + b" "
        self.skipped.append(f"{where} ({vr})")
        return None

    def _date(self, n: int) -> str:
        # Every planted date lies in 1950; the export shifts dates 1 to 10 years back, out of 1950.
        return (date(1950, 1, 1) + timedelta(days=n % 365)).strftime("%Y%m%d")

    def _remember(self, where: str, *needles: str) -> str:
        for needle in needles:
            self.needles[needle] = where
        return needles[-1] if len(needles) == 1 else needles


def _sequence_item(planter: Planter, where: str) -> Dataset:
    item = Dataset()
    item.CodeValue = planter.value("SH", f"{where}>CodeValue")
    item.CodeMeaning = planter.value("LO", f"{where}>CodeMeaning")
    item.PersonName = planter.value("PN", f"{where}>PersonName")
    item.ReferencedSOPInstanceUID = planter.value("UI", f"{where}>ReferencedSOPInstanceUID")
    return item


def unlisted_phi_attributes() -> list[tuple[int, str]]:
    """(tag, VR) of every current public attribute Table E.1-1 does not list that holds a name, a date/time
    or free text and that the de-identifier does not keep on purpose."""
    found = []
    for tag, (vr, _, _, retired, keyword) in sorted(DicomDictionary.items()):
        group = tag >> 16
        if (retired or not keyword or tag in BASIC_PROFILE or group in (0x0000, 0x0002) or group % 2
                or 0x5000 <= group < 0x6100 or vr not in PHI_BY_DEFAULT_VRS or keyword in KEPT_UNLISTED_TEXT):
            continue
        found.append((tag, vr))
    return found


def _unlisted_item(planter: Planter, where: str, *, depth: int) -> Dataset:
    """A coded item (kept) carrying unlisted PHI, a private element and, below it, another such item."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "51185008", "SCT", "Chest"
    item.EvaluatorName = planter.value("PN", f"{where}>EvaluatorName")
    item.ExpiryDate = planter.value("DA", f"{where}>ExpiryDate")
    item.ObservationDateTime = planter.value("DT", f"{where}>ObservationDateTime")
    item.WindowCenterWidthExplanation = planter.value("LO", f"{where}>WindowCenterWidthExplanation")
    item.add(DataElement(0x00330010, "LO", "PHICREATORNESTED"))
    planter.needles["PHICREATORNESTED"] = f"{where}>private creator"
    item.add(DataElement(0x00331001, "LO", planter.value("LO", f"{where}>private LO")))
    if depth > 1:
        inner = f"{where}>PrimaryAnatomicStructureModifierSequence"
        item.PrimaryAnatomicStructureModifierSequence = Sequence([_unlisted_item(planter, inner, depth=depth - 1)])
    return item


def plant_phi(source: Path, target: Path, planter: Planter, *, burned_in: str = "NO") -> None:
    """Copy a real radiograph with a fake PHI value in every attribute of Table E.1-1."""
    ds = pydicom.dcmread(source, force=True)
    for tag, (_, name) in sorted(BASIC_PROFILE.items()):
        group = tag >> 16
        if group in (0x0000, 0x0002) or tag in (0xFFFAFFFA, 0xFFFCFFFC):
            continue  # command group, file meta (planted below), signatures/padding (not dataset content)
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"  # newer than pydicom's dictionary: a reader sees it as UN
        if vr == "SQ":
            ds.add(DataElement(tag, "SQ", Sequence([_sequence_item(planter, name)])))
            continue
        value = planter.value(vr, name)
        if value is not None:
            ds.add(DataElement(tag, vr, value))
    # Repeating groups: a curve, and a whole overlay plane with a label, comments and data.
    ds.add(DataElement(0x50000030, "SH", planter.value("SH", "Curve (5000,0030)")))
    for element, vr, value in ((0x0010, "US", 8), (0x0011, "US", 8), (0x0040, "CS", "G"), (0x0050, "SS", [1, 1]),
                               (0x0100, "US", 1), (0x0102, "US", 0)):
        ds.add(DataElement(0x60020000 | element, vr, value))
    ds.add(DataElement(0x60021500, "LO", planter.value("LO", "Overlay Label")))
    ds.add(DataElement(0x60024000, "LT", planter.value("LT", "Overlay Comments")))
    ds.add(DataElement(0x60023000, "OW", planter.value("OW", "Overlay Data")))
    # Fail-closed: every unlisted public name, date/time and free-text attribute, at the top level ...
    for tag, vr in unlisted_phi_attributes():
        if tag not in ds:
            ds.add(DataElement(tag, vr, planter.value(vr, f"unlisted {keyword_for_tag(tag)}")))
    # ... and two levels deep in sequences the table does not list, with a private element inside.
    ds.PrimaryAnatomicStructureSequence = Sequence([_unlisted_item(planter, "PrimaryAnatomicStructureSequence",
                                                                       depth=2)])
    # A public attribute no dictionary knows.
    ds.add(DataElement(0x0008EEEE, "LO", planter.value("LO", "unknown public attribute")))
    # Private tags: a creator, a value and a private sequence with a name inside.
    ds.add(DataElement(0x00110010, "LO", "PHICREATORPRIVATE"))
    planter.needles["PHICREATORPRIVATE"] = "private creator"
    ds.add(DataElement(0x00111001, "LO", planter.value("LO", "private LO")))
    ds.add(DataElement(0x00111002, "SQ", Sequence([_sequence_item(planter, "private sequence")])))
    # The patient everything else refers to.
    ds.PatientName = f"{PATIENT_FAMILY}^{PATIENT_GIVEN}"
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = BIRTH_DATE
    ds.ReferringPhysicianName = f"{REFERRER_FAMILY}^{REFERRER_GIVEN}"
    ds.BurnedInAnnotation = burned_in
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    meta = pydicom.dataset.FileMetaDataset()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    ds.save_as(target, enforce_file_format=True)


def scannable_texts(path: Path) -> list[bytes]:
    """The file's bytes, plus what is inside compressed PNG chunks and inside DICOM element values."""
    raw = path.read_bytes()
    texts = [raw]
    if raw.startswith(b"\x89PNG"):
        position, idat = 8, b""
        while position < len(raw):
            length = int.from_bytes(raw[position:position + 4], "big")
            kind, body = raw[position + 4:position + 8], raw[position + 8:position + 8 + length]
            if kind == b"IDAT":
                idat += body
            elif kind in (b"zTXt", b"iTXt", b"tEXt"):
                texts.append(body)
                try:
                    texts.append(zlib.decompress(body.split(b"\x00", 2)[-1]))
                except zlib.error:
                    pass
            position += 12 + length
        texts.append(zlib.decompress(idat))
    if raw[128:132] == b"DICM":
        values: list[str] = []
        dataset = pydicom.dcmread(path)
        dataset.file_meta.walk(lambda _, element: values.append(str(element.value)))
        dataset.walk(lambda _, element: values.append(str(element.value)) if element.tag != 0x7FE00010 else None)
        texts.append("\n".join(values).encode("utf-8", "replace"))
    return texts


def printable(blob: bytes) -> bytes:
    """Runs of >= 4 printable ASCII characters, lower-cased: every planted value lies inside one."""
    return b"\n".join(re.findall(rb"[\x20-\x7e]{4,}", blob)).lower()


def find_needles(files: list[Path], needles: dict[str, str]) -> list[str]:
    """Planted values found in the files; a value made of digits only counts when not inside a longer number."""
    found = []
    for path in files:
        text = b"\n".join(printable(blob) for blob in scannable_texts(path))
        for needle, where in needles.items():
            target = needle.lower().encode("ascii")
            numeric = needle.replace(".", "").isdigit()
            start = text.find(target)
            while start != -1:
                end = start + len(target)
                embedded = numeric and ((start > 0 and text[start - 1:start].isdigit()) or text[end:end + 1].isdigit())
                if not embedded:
                    found.append(f"{needle} ({where}) in {path.name}")
                    break
                start = text.find(target, start + 1)
    return found


@pytest.fixture(scope="module")
def phi_export(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    root = tmp_path_factory.mktemp("phi")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("RADASSIST_DATA_DIR", str(root / "userdata"))
    sources = root / "incoming"
    sources.mkdir()
    planters = {"nih": Planter("N"), "cr": Planter("C"), "burned": Planter("B")}
    files = {
        "nih": sources / f"{PATIENT_FAMILY}_{PATIENT_GIVEN}_chest.dcm",
        "cr": sources / f"{PATIENT_GIVEN} {PATIENT_FAMILY} {PATIENT_ID}.dcm",
        "burned": sources / f"{PATIENT_FAMILY}_burned.dcm",
    }
    plant_phi(shared_data / NIH_DICOM, files["nih"], planters["nih"])
    plant_phi(shared_data / CR_DICOM, files["cr"], planters["cr"])
    plant_phi(shared_data / CR_DICOM, files["burned"], planters["burned"], burned_in="YES")
    report = (f"\nDiscussed with Mr {PATIENT_FAMILY} ({PATIENT_GIVEN} {PATIENT_FAMILY}), MRN {PATIENT_ID}, "
              f"born 1950-01-01, phone +44 20 7946 0958.\nResults called to {UNTITLED_FIRST} {UNTITLED_LAST}. "
              f"cc {REFERRER_GIVEN} {REFERRER_FAMILY}.")
    store_path = root / "feedback.sqlite"
    with EventStore(store_path) as store:
        for key, path in files.items():
            truth = {"pneumonia": 1, "opacity": 1} if key != "nih" else {"pneumonia": 0, "opacity": 0}
            read_like_a_radiologist(store, read_image(path), truth, reader_id=READER, report_suffix=report)
        summary = export_feedback(store, root / "export")
    needles = {}
    for planter in planters.values():
        needles.update(planter.needles)
    for value in (PATIENT_FAMILY, PATIENT_GIVEN, PATIENT_ID, BIRTH_DATE, "1950-01-01", "7946 0958", "phireader",
                  REFERRER_FAMILY, REFERRER_GIVEN, UNTITLED_FIRST, UNTITLED_LAST):
        needles[value] = "patient name/id/birth date (header, file name, report), phone, reader id"
    yield {"root": root, "out": root / "export", "store": store_path, "summary": summary, "needles": needles,
           "planters": planters}
    monkeypatch.undo()


def test_no_planted_value_appears_in_any_exported_byte(phi_export):
    out = phi_export["out"]
    files = sorted(p for p in out.rglob("*") if p.is_file())
    planted = phi_export["needles"]
    found = find_needles(files, planted)
    skipped = sum(len(p.skipped) for p in phi_export["planters"].values())
    unlisted = sum(1 for where in planted.values() if where.startswith(("unlisted ", "PrimaryAnatomic")))
    print(f"\nplanted {len(planted)} distinct values ({unlisted} in attributes Table E.1-1 does not list; "
          f"{skipped} numeric attributes not plantable as text); "
          f"scanned {len(files)} files, {sum(p.stat().st_size for p in files)} bytes; PHI values found: {len(found)}")
    assert len(planted) > 500
    assert not found, found[:20]


def test_the_scan_would_find_planted_values(phi_export):
    """The scanner itself works: the planted source files are full of needles."""
    sources = sorted((phi_export["root"] / "incoming").glob("*.dcm"))
    found = find_needles(sources[:1], phi_export["needles"])
    assert len(found) > 400


def test_the_event_store_holds_no_phi_and_paths_stay_in_the_local_sources_file(phi_export):
    store = phi_export["store"]
    store_files = [p for p in store.parent.glob(store.name + "*") if p.is_file()]
    # The store names its readers (staff, not patients: who read what, locally); exports pseudonymise them.
    # Staff named in the header (the referrer) are known to the export, which reads the whole header; the
    # reading session scrubs with the patient's names and the patterns only.
    staff = {"phireader", REFERRER_FAMILY, REFERRER_GIVEN}
    patient_phi = {k: v for k, v in phi_export["needles"].items() if k not in staff}
    assert not find_needles(store_files, patient_phi)
    local = sources_path_for(store)
    assert PATIENT_FAMILY.encode() in local.read_bytes()  # the path, kept locally to find the image again
    assert (local.stat().st_mode & 0o777) == 0o600


def test_burned_in_image_is_left_out_and_the_datasets_are_marked(phi_export):
    out = phi_export["out"]
    summary = phi_export["summary"]
    assert summary.sessions_exported == 2 and len(summary.excluded) == 1
    assert "BurnedInAnnotation=YES" in summary.excluded[0]["reason"]
    for path in sorted((out / "dicom").rglob("image.dcm")):
        image = pydicom.dcmread(path)
        assert image.PatientIdentityRemoved == "YES"
        assert [c.CodeValue for c in image.DeidentificationMethodCodeSequence] == ["113100", "113107"]
        assert image.LongitudinalTemporalInformationModified == "MODIFIED"
        assert not any(element.tag.is_private for element in image.iterall())
    reports = [path.read_text() for path in sorted((out / "reports").glob("*.txt"))]
    assert len(reports) == 2
    for report in reports:  # identifiers replaced, clinical content kept
        assert "Discussed with Mr [NAME] ([NAME]), MRN [NUMBER], born [DATE], phone [NUMBER]." in report
        assert "Results called to [NAME]. cc [NAME]." in report
        assert "consolidation" in report.lower() or "lungs are clear" in report.lower()
    assert json.loads((out / "manifest.json").read_text())["excluded"]


def test_deidentified_files_still_pass_dciodvfy(phi_export):
    """Even from sources stuffed with every profile attribute, the export writes valid DICOM."""
    require_dicom_tools()
    files = sorted((phi_export["out"] / "dicom").rglob("*.dcm"))
    assert len(files) == 5  # 2 images, 2 SR, 1 SEG (the burned-in image is left out)
    for path in files:
        errors, _ = dciodvfy(path)
        assert not errors, f"{path.name}: {errors}"


def test_typed_finding_names_and_region_labels_are_scrubbed_before_the_store(tmp_path: Path, data_dir: Path,
                                                                            shared_data: Path):
    """'Add finding' and region labels are typed by the radiologist: names in them never reach the store."""
    from radassist.feedback import FeedbackSession

    source = tmp_path / "typed.dcm"
    plant_phi(shared_data / CR_DICOM, source, Planter("T"))
    radiograph = read_image(source)
    store_path = tmp_path / "typed.sqlite"
    with EventStore(store_path) as store:
        session = FeedbackSession(store, reader_id="reader-typed")
        session.open_study(radiograph)
        session.add_finding("nodule_per_john_qzx_smith", "Nodule per John Qzx Smith")
        session.add_finding("mass_phipatientsurname", f"Mass {PATIENT_FAMILY}")  # the header's name, untitled
        square = {"kind": "polygon", "points": [[10, 10], [60, 10], [60, 60]]}
        region = session.draw_region("Lesion seen by Jane Qzxdoe", square)
        session.change_region(region, label="Recheck, discussed with Peter Qzxpeter")
        state = session.state()
        session.close()
    labels = sorted(state.findings)
    assert labels == ["mass_name", "nodule_per_name"]
    assert {f.display_name for f in state.findings.values()} == {"Nodule per [NAME]", "Mass [NAME]"}
    assert state.regions[region].label == "Recheck, discussed with [NAME]"
    store_files = [p for p in store_path.parent.glob(store_path.name + "*") if p.is_file()]
    typed = {word: "typed label" for word in ("John", "Qzx", "Smith", "Jane", "Qzxdoe", "Qzxpeter", PATIENT_FAMILY)}
    assert not find_needles(store_files, typed)
