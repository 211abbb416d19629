"""The images a DICOMDIR lists, each confined to the DICOMDIR's folder and checked to be a regular file.

pydicom's FileSet refuses a whole DICOMDIR when one record points outside its folder; a hostile or damaged
DICOMDIR (records pointing at `..`, an absolute path, a symbolic link out of the folder, a FIFO, or offsets that
form a cycle) must instead list what it can and say what it skipped. The directory records are walked here by
their offsets, each node visited once, and every IMAGE-level record's Referenced File ID goes through
`files.confined` and `files.regular_file`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radassist.errors import InputRefused
from radassist.io.files import confined, regular_file
from radassist.outputs import shown

MAX_RECORDS = 200_000  # a DICOMDIR of a whole CD holds a few thousand


@dataclass
class DicomdirImage:
    """An image listed in a DICOMDIR: its file and the records above it (series, study, patient)."""

    path: Path
    records: list[Any] = field(default_factory=list)  # the image's record first, then its parents

    def __getattr__(self, keyword: str) -> Any:
        """A DICOM keyword looked up in the image's record, then in its series, study and patient records."""
        if keyword.startswith("_") or keyword in ("path", "records"):
            raise AttributeError(keyword)
        for record in self.records:
            try:
                value = record.get(keyword)
            except Exception:  # noqa: BLE001  (a malformed element in a hostile DICOMDIR: look further up)
                continue
            if value not in (None, ""):
                return value
        return None


@dataclass
class DicomdirListing:
    images: list[DicomdirImage] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "what: reason", for the study browser's status line


def read_dicomdir(dicomdir: Path) -> DicomdirListing:
    """Every image the DICOMDIR lists that is a regular file inside its folder; the others are in `skipped`."""
    import pydicom

    regular_file(dicomdir, what="a DICOMDIR file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(str(dicomdir), force=True)
            records = list(dataset.get("DirectoryRecordSequence") or [])
            first = int(dataset.get("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity") or 0)
    except Exception as exc:  # noqa: BLE001  (pydicom raises many kinds for a damaged DICOMDIR)
        raise InputRefused(f"{shown(dicomdir)} is not a readable DICOMDIR ({type(exc).__name__})") from None
    if len(records) > MAX_RECORDS:
        raise InputRefused(f"{shown(dicomdir)} lists {len(records)} records; refusing to read it")
    listing = DicomdirListing()
    for record, parents in _walk(records, first):
        if "ReferencedFileID" in record and str(record.get("DirectoryRecordType", "")).upper() != "DICOMDIR":
            _add_image(listing, dicomdir.parent, record, parents)
    return listing


def _walk(records: list[Any], first: int):
    """(record, parents) depth-first by the records' offsets; each record once, so offset cycles end."""
    by_offset = {getattr(item, "seq_item_tell", None): item for item in records}
    if first not in by_offset:  # no usable offsets: fall back to the sequence order, without parents
        yield from ((item, []) for item in records)
        return
    visited: set[int] = set()
    stack: list[tuple[int, list[Any]]] = [(first, [])]
    while stack:
        offset, parents = stack.pop()
        while offset and offset in by_offset and offset not in visited:
            visited.add(offset)
            record = by_offset[offset]
            yield record, parents
            following = _offset(record, "OffsetOfTheNextDirectoryRecord")
            lower = _offset(record, "OffsetOfReferencedLowerLevelDirectoryEntity")
            if lower:
                stack.append((following, parents))  # siblings after the children
                offset, parents = lower, [record, *parents]
            else:
                offset = following


def _offset(record: Any, keyword: str) -> int:
    try:
        return int(record.get(keyword) or 0)
    except (TypeError, ValueError):
        return 0


def _add_image(listing: DicomdirListing, folder: Path, record: Any, parents: list[Any]) -> None:
    try:
        file_id = record.ReferencedFileID
        parts = [file_id] if isinstance(file_id, str) else [str(part) for part in file_id]
    except Exception:  # noqa: BLE001  (malformed element)
        listing.skipped.append("a DICOMDIR record: unreadable Referenced File ID")
        return
    shown_id = "/".join(parts)
    if not parts or any(not part for part in parts):
        listing.skipped.append(f"{shown(shown_id)}: empty Referenced File ID")
        return
    entry = Path(*parts)
    if entry.is_absolute():
        listing.skipped.append(f"{shown(shown_id)}: an absolute path, outside the DICOMDIR's folder")
        return
    try:
        path = confined(folder / entry, folder)
        regular_file(path)
    except InputRefused as refusal:
        listing.skipped.append(f"{shown(shown_id)}: {refusal}")
        return
    listing.images.append(DicomdirImage(path, [record, *parents]))
