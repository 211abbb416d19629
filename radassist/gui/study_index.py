"""What the study browser lists: files, folders and DICOMDIRs grouped as patient/study -> series -> images.

Qt-free (it runs on a worker thread and is tested without widgets). DICOM headers are read without
pixel data, so indexing a folder of radiographs costs milliseconds a file. Images without a DICOM
header (PNG, JPEG, ...) are grouped by folder. Nothing here writes to the files it looks at.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from radassist.errors import InputRefused

log = logging.getLogger(__name__)

MAX_FILES_PER_FOLDER = 5000  # a folder walk stops here (a mis-click on a home folder must not hang)
_HEAD_BYTES = 512
_HEADER_TAGS = ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyDescription",
                "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality", "InstanceNumber",
                "SOPInstanceUID", "ViewPosition")


@dataclass
class Instance:
    path: Path
    name: str  # what the browser shows
    instance_number: int | None = None
    view_position: str | None = None


@dataclass
class Series:
    uid: str
    description: str
    modality: str = ""
    number: int | None = None
    instances: list[Instance] = field(default_factory=list)


@dataclass
class Study:
    uid: str
    patient_name: str
    patient_id: str
    date: str
    description: str
    series: list[Series] = field(default_factory=list)

    def instances(self) -> list[Instance]:
        return [instance for series in self.series for instance in series.instances]


class StudyIndex:
    """Studies keyed by uid; adding the same file twice lists it once."""

    def __init__(self) -> None:
        self.studies: dict[str, Study] = {}
        self._paths: set[Path] = set()
        self.skipped: list[str] = []  # "name: reason" for files that could not be listed

    def instances(self) -> list[Instance]:
        """Every image in browser order (study, series, instance number)."""
        return [instance for study in self.studies.values() for instance in study.instances()]

    def add(self, study: Study, series: Series, instance: Instance) -> None:
        path = instance.path.resolve()
        if path in self._paths:
            return
        self._paths.add(path)
        known_study = self.studies.setdefault(study.uid, study)
        known_series = next((s for s in known_study.series if s.uid == series.uid), None)
        if known_series is None:
            known_series = series
            known_study.series.append(series)
        known_series.instances.append(instance)
        known_series.instances.sort(key=lambda i: (i.instance_number is None, i.instance_number or 0, i.name))

    def merge(self, other: StudyIndex) -> None:
        """Take in what another index found (e.g. a background indexing job); duplicates are listed once."""
        for study in other.studies.values():
            for series in study.series:
                for instance in series.instances:
                    self.add(replace(study, series=[]), replace(series, instances=[]), instance)
        self.skipped += other.skipped

    def add_paths(self, paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
        """Index files, folders and DICOMDIRs; returns the image files found, in the order given.

        A file given by name must be a regular file (else InputRefused); what a folder or DICOMDIR lists is
        confined to that folder: entries that lead outside it, FIFOs, devices and link loops are skipped.
        """
        from radassist.io.files import regular_file

        found: list[Path] = []
        for path in map(Path, paths):
            if _is_folder(path):
                found += self._add_folder_or_its_dicomdir(path)
            elif path.name.upper() == "DICOMDIR":
                found += self._add_dicomdir(path)
            else:
                regular_file(path)
                found += self._add_file(path, explicit=True)
        return found

    def _add_folder_or_its_dicomdir(self, folder: Path) -> list[Path]:
        """The images the folder's DICOMDIR lists; the files in the folder when it has none, or a DICOMDIR that is
        unreadable or lists no image that can be opened."""
        dicomdir = _dicomdir_in(folder)
        if dicomdir is not None:
            try:
                found = self._add_dicomdir(dicomdir)
            except InputRefused as refusal:
                found, reason = [], str(refusal)
            else:
                reason = "lists no image that can be opened"
            if found:
                return found
            self.skipped.append(f"{dicomdir.name}: {reason}; listing the folder's files instead")
        return self._add_folder(folder)

    def _add_folder(self, folder: Path) -> list[Path]:
        from radassist.io.files import confined, regular_file

        found: list[Path] = []
        seen = 0
        for root, dirs, files in os.walk(folder, onerror=lambda exc: self._skip_unreadable(exc)):
            dirs.sort()
            for name in sorted(files):
                seen += 1
                if seen > MAX_FILES_PER_FOLDER:
                    self.skipped.append(f"{folder.name}: stopped after {MAX_FILES_PER_FOLDER} files")
                    return found
                path = Path(root) / name
                try:
                    confined(path, folder)
                    regular_file(path)
                except InputRefused as refusal:
                    self.skipped.append(f"{name}: {refusal}")
                    continue
                found += self._add_file(path, explicit=False)
        return found

    def _skip_unreadable(self, exc: OSError) -> None:
        self.skipped.append(f"{Path(exc.filename or '').name}: cannot be listed ({exc.strerror or exc})")

    def _add_file(self, path: Path, *, explicit: bool) -> list[Path]:
        """Index one regular file; in a folder walk, files that are not images are passed over silently."""
        from radassist.io.dicom import looks_like_dicom
        from radassist.io.files import read_head
        from radassist.io.raster import raster_format

        try:
            head = read_head(path, _HEAD_BYTES)
        except InputRefused as refusal:
            self.skipped.append(f"{path.name}: {refusal}")
            return []
        if looks_like_dicom(head) or (explicit and path.suffix.lower() in (".dcm", ".dicom", "")):
            return self._add_dicom(path)
        if raster_format(path, head):
            folder = path.parent
            study = Study(uid=f"folder:{folder}", patient_name="(no DICOM header)", patient_id="", date="",
                          description=folder.name or str(folder))
            self.add(study, Series(uid=f"folder:{folder}", description="image files"), Instance(path, path.name))
            return [path]
        if explicit:
            self.skipped.append(f"{path.name}: not an image RadAssist can read")
        return []

    def _add_dicom(self, path: Path) -> list[Path]:
        import pydicom
        from pydicom.errors import InvalidDicomError

        try:
            with warnings.catch_warnings():  # malformed values are read_image's to report when opened
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True,
                                     specific_tags=list(_HEADER_TAGS))
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, IndexError) as exc:
            log.debug("not listed: %s (%s)", path.name, type(exc).__name__)
            self.skipped.append(f"{path.name}: not a readable DICOM file")
            return []
        if not ds.get("SOPInstanceUID") and not ds.get("StudyInstanceUID"):
            self.skipped.append(f"{path.name}: not a DICOM image")
            return []
        study, series, instance = _records(ds, path)
        self.add(study, series, instance)
        return [path]

    def _add_dicomdir(self, dicomdir: Path) -> list[Path]:
        from radassist.io.dicomdir import read_dicomdir

        listing = read_dicomdir(dicomdir)
        self.skipped += listing.skipped
        for image in listing.images:
            study, series, instance = _records(image, image.path)
            self.add(study, series, instance)
        return [image.path for image in listing.images]


def _is_folder(path: Path) -> bool:
    """True for a folder; InputRefused for a path that cannot be looked at (missing, link loop, no access)."""
    import stat

    from radassist.io.files import regular_file

    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        regular_file(path)  # raises the one-sentence reason
        raise


def _dicomdir_in(folder: Path) -> Path | None:
    for name in ("DICOMDIR", "dicomdir"):
        if (folder / name).is_file():
            return folder / name
    return None


def _text(source, keyword: str) -> str:
    try:
        value = getattr(source, keyword, None)
    except (AttributeError, KeyError, ValueError):  # FileInstance looks attributes up through its records
        return ""
    return str(value).strip() if value not in (None, "") else ""


def _number(source, keyword: str) -> int | None:
    try:
        return int(_text(source, keyword))
    except ValueError:
        return None


def _records(source, path: Path) -> tuple[Study, Series, Instance]:
    """Study / series / instance records from a dataset or a DICOMDIR FileInstance."""
    study_uid = _text(source, "StudyInstanceUID") or f"file:{path}"
    series_uid = _text(source, "SeriesInstanceUID") or f"{study_uid}:series"
    study = Study(uid=study_uid, patient_name=_text(source, "PatientName").replace("^", " ").strip(),
                  patient_id=_text(source, "PatientID"), date=_format_date(_text(source, "StudyDate")),
                  description=_text(source, "StudyDescription"))
    series = Series(uid=series_uid, description=_text(source, "SeriesDescription"),
                    modality=_text(source, "Modality"), number=_number(source, "SeriesNumber"))
    number = _number(source, "InstanceNumber")
    view = _text(source, "ViewPosition")
    name = " ".join(part for part in (f"#{number}" if number is not None else "", view, path.name) if part)
    return study, series, Instance(path, name, number, view or None)


def _format_date(value: str) -> str:
    digits = value.replace(".", "").replace("-", "")
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}" if len(digits) == 8 and digits.isdigit() else value
