"""Folders and DICOMDIRs are read only inside the folder opened (issue 21, paths).

The DICOMDIR is a real one written by pydicom's FileSet, then re-encoded with three records pointing out of the
folder (by `..`, by an absolute path, through a symbolic link); fuzz/hostile_probe.py builds it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from radassist.errors import InputRefused
from radassist.gui.study_index import StudyIndex
from radassist.io.dicomdir import _walk, read_dicomdir

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("hostile_probe", REPO / "fuzz" / "hostile_probe.py")
probe = sys.modules.setdefault("hostile_probe", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(probe)


@pytest.fixture()
def escaping_study(tmp_path: Path) -> Path:
    with pytest.warns(UserWarning):  # pydicom warns that '..' and a long path are not valid CS values
        return probe.escaping_dicomdir(tmp_path / "study")


def test_a_dicomdir_lists_only_the_image_inside_its_folder(escaping_study: Path) -> None:
    listing = read_dicomdir(escaping_study / "DICOMDIR")
    assert [image.path.parent for image in listing.images] == [(escaping_study / "PT000000/ST000000/SE000000")
                                                              .resolve()]
    reasons = "\n".join(listing.skipped)
    assert "OUTSIDE.dcm" in reasons and "points outside the folder" in reasons
    assert "an absolute path, outside the DICOMDIR's folder" in reasons
    assert "LINK.dcm" in reasons
    assert len(listing.skipped) == 3
    image = listing.images[0]
    assert image.StudyInstanceUID and image.InstanceNumber == 1  # looked up through the record hierarchy


def test_the_study_browser_index_skips_escapes_fifos_and_devices(tmp_path: Path) -> None:
    folder = probe.escaping_folder(tmp_path / "images")
    index = StudyIndex()
    found = index.add_paths([folder])
    assert [p.name for p in found] == ["inside.png"]
    skipped = "\n".join(index.skipped)
    assert "escape.png" in skipped and "random.dcm" in skipped and "points outside the folder" in skipped
    assert "pipe.dcm" in skipped and "named pipe" in skipped


def test_the_study_browser_refuses_a_named_fifo_and_a_link_loop(tmp_path: Path) -> None:
    fifo = tmp_path / "x.dcm"
    os.mkfifo(fifo)
    with pytest.raises(InputRefused, match="named pipe"):
        StudyIndex().add_paths([fifo])
    loop = tmp_path / "loop.dcm"
    loop.symlink_to(loop)
    with pytest.raises(InputRefused, match="symbolic link loop"):
        StudyIndex().add_paths([loop])


class _Record(dict):
    """A directory record as _walk sees it: .get() for the offsets and seq_item_tell for its own position."""

    def __init__(self, tell: int, following: int = 0, lower: int = 0) -> None:
        super().__init__(OffsetOfTheNextDirectoryRecord=following,
                         OffsetOfReferencedLowerLevelDirectoryEntity=lower)
        self.seq_item_tell = tell


def test_record_offsets_that_form_a_cycle_visit_each_record_once() -> None:
    patient = _Record(100, following=0, lower=200)
    study = _Record(200, following=0, lower=300)
    image = _Record(300, following=200, lower=0)  # points back to the study: a loop in a hostile DICOMDIR
    walked = list(_walk([patient, study, image], first=100))
    assert [record.seq_item_tell for record, _ in walked] == [100, 200, 300]
    assert [len(parents) for _, parents in walked] == [0, 1, 2]


def test_a_folder_whose_dicomdir_is_damaged_lists_its_files_instead(tmp_path: Path) -> None:
    folder = tmp_path / "cd"
    folder.mkdir()
    (folder / "DICOMDIR").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 40)
    (folder / "chest.dcm").write_bytes(probe.SAMPLE_DICOM.read_bytes())
    index = StudyIndex()
    assert [p.name for p in index.add_paths([folder])] == ["chest.dcm"]
    assert any("listing the folder's files instead" in reason for reason in index.skipped)
