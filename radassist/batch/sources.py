"""What a batch reads: a folder tree, a DICOMDIR or a list file -> images confined to one folder.

Every image must resolve (symbolic links followed) to a regular file inside the folder the user gave
(the folder itself, the DICOMDIR's folder, or the list file's folder). Entries that escape it (`..`,
absolute paths, links), loops, missing files and non-regular files (FIFOs, devices) are not read: they
become refused rows with the reason. Only paths are listed; no image is opened here.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from radassist.errors import InputRefused

# Files a folder walk hands to the reader; files with no suffix are included (DICOM archives: IM0001).
IMAGE_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".gz",
                            ".mha", ".mhd", ".nrrd"})
DICOMDIR_NAMES = ("DICOMDIR", "dicomdir")
MAX_LIST_LINE = 4096  # characters; a longer "line" means SRC is not a list of paths


class SourceKind(enum.Enum):
    FOLDER = "folder"
    DICOMDIR = "DICOMDIR"
    LIST_FILE = "list file"


@dataclass(frozen=True)
class BatchItem:
    """One image to read."""

    path: str  # the resolved path to open (checked to lie inside the source root)
    relative: str  # POSIX path relative to the source root: the summary key and the result's name
    study_uid: str | None = None  # known up front for DICOMDIR entries


@dataclass(frozen=True)
class RefusedEntry:
    """Something the source names that will not be read, and why."""

    relative: str
    reason: str


@dataclass
class SourceListing:
    kind: SourceKind
    root: Path  # every image lies inside this folder
    items: list[BatchItem] = field(default_factory=list)
    refused: list[RefusedEntry] = field(default_factory=list)


def list_source(source: Path, exclude: Sequence[Path] = ()) -> SourceListing:
    """The images SRC names. Folders in `exclude` (what the batch writes) are never read, even inside SRC."""
    if not os.path.lexists(source):
        raise InputRefused(f"{source} does not exist")
    excluded = tuple(_real(folder) for folder in exclude)
    if source.is_dir():
        dicomdir = next((source / name for name in DICOMDIR_NAMES if (source / name).is_file()), None)
        if dicomdir is not None:
            return _list_dicomdir(dicomdir, excluded)
        return _list_folder(source, excluded)
    if source.name.upper() == "DICOMDIR":
        return _list_dicomdir(source, excluded)
    if source.is_file():
        return _list_file(source, excluded)
    raise InputRefused(f"{source} is not a folder, a DICOMDIR or a list file")


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _confine(path: Path, root: Path, excluded: tuple[Path, ...]) -> tuple[Path | None, str]:
    """(the real path, "") when `path` may be read, else (None, why not)."""
    from radassist.io.files import confined, regular_file

    try:
        real = confined(path, root)
        regular_file(real)
    except InputRefused as exc:
        return None, str(exc)
    if any(_inside(real, folder) for folder in excluded):
        return None, "lies in the batch's own output"
    return real, ""


def _list_folder(folder: Path, excluded: tuple[Path, ...]) -> SourceListing:
    root = _real(folder)
    listing = SourceListing(SourceKind.FOLDER, root)
    for path, is_link_to_folder in _walk(folder, listing, excluded):
        relative = path.relative_to(folder).as_posix()
        if is_link_to_folder:
            listing.refused.append(RefusedEntry(relative, "is a link to a folder (not followed)"))
            continue
        real, reason = _confine(path, root, excluded)
        if real is None:
            listing.refused.append(RefusedEntry(relative, reason))
        else:
            listing.items.append(BatchItem(str(real), relative))
    return listing


def _walk(folder: Path, listing: SourceListing, excluded: tuple[Path, ...]) -> Iterator[tuple[Path, bool]]:
    """Candidate image files under `folder` in a stable order; (path, True) for links to folders."""

    def unreadable(error: OSError) -> None:
        name = Path(error.filename).relative_to(folder).as_posix() if error.filename else "."
        listing.refused.append(RefusedEntry(name or ".", f"folder cannot be listed ({error.strerror or error})"))

    for top, dirs, files in os.walk(folder, onerror=unreadable):
        here = Path(top)
        kept = []
        for name in sorted(dirs):
            path = here / name
            if name.startswith("."):
                continue
            if path.is_symlink():
                yield path, True
            elif not any(_inside(_real(path), skipped) for skipped in excluded):
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = here / name
            suffix = path.suffix.lower()
            if name.startswith(".") or name in DICOMDIR_NAMES or (suffix and suffix not in IMAGE_SUFFIXES):
                continue
            yield path, False


def _list_dicomdir(dicomdir: Path, excluded: tuple[Path, ...]) -> SourceListing:
    """The DICOMDIR's image records (radassist.io.dicomdir confines each to the DICOMDIR's folder)."""
    from radassist.io.dicomdir import read_dicomdir

    root = _real(dicomdir.parent)
    listing = SourceListing(SourceKind.DICOMDIR, root)
    records = read_dicomdir(dicomdir)
    for skipped in records.skipped:
        what, _, reason = skipped.partition(": ")
        listing.refused.append(RefusedEntry(what, reason))
    seen: set[Path] = set()
    for image in records.images:
        real, reason = _confine(image.path, root, excluded)
        relative = real.relative_to(root).as_posix() if real is not None else str(image.path)
        if real is None:
            listing.refused.append(RefusedEntry(relative, reason))
        elif real in seen:
            listing.refused.append(RefusedEntry(relative, "is listed twice"))
        else:
            seen.add(real)
            study = str(image.StudyInstanceUID or "").strip() or None
            listing.items.append(BatchItem(str(real), relative, study))
    return listing


def _list_file(list_file: Path, excluded: tuple[Path, ...]) -> SourceListing:
    """One path a line (relative to the list file's folder, or absolute inside it); blank and # lines skipped."""
    root = _real(list_file.parent)
    listing = SourceListing(SourceKind.LIST_FILE, root)
    seen: set[Path] = set()
    try:
        with open(list_file, encoding="utf-8", newline="") as handle:
            for line in iter(lambda: handle.readline(MAX_LIST_LINE + 1), ""):
                if len(line) > MAX_LIST_LINE and not line.endswith("\n"):
                    raise _not_a_list(list_file)
                entry = line.rstrip("\r\n")
                if not entry.strip() or entry.lstrip().startswith("#"):
                    continue
                if "\0" in entry:
                    raise _not_a_list(list_file)
                path = Path(entry) if os.path.isabs(entry) else list_file.parent / entry
                real, reason = _confine(path, root, excluded)
                if real is None:
                    listing.refused.append(RefusedEntry(entry, reason))
                elif real in seen:
                    listing.refused.append(RefusedEntry(entry, "is listed twice"))
                else:
                    seen.add(real)
                    listing.items.append(BatchItem(str(real), real.relative_to(root).as_posix()))
    except UnicodeDecodeError:
        raise _not_a_list(list_file) from None
    except OSError as exc:
        raise InputRefused(f"{list_file.name} cannot be opened ({exc.strerror or exc})") from None
    return listing


def _not_a_list(list_file: Path) -> InputRefused:
    return InputRefused(f"{list_file.name} is not a folder, a DICOMDIR or a text list of image paths")


