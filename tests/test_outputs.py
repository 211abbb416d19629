"""radassist.outputs.OutputWriter: inputs are never written, files are never clobbered, writes are atomic."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from radassist.outputs import OutputRefused, OutputWriter, shown

SOURCE_BYTES = b"\x89PNG source image bytes that must survive"


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "chest.png"
    path.parent.mkdir()
    path.write_bytes(SOURCE_BYTES)
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_writes_a_new_file_with_the_umask_mode_and_no_temporary_left(tmp_path: Path) -> None:
    writer = OutputWriter()
    target = writer.write_bytes(tmp_path / "mask.png", b"mask")
    assert target.read_bytes() == b"mask"
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("route", ["same path", "hard link", "symbolic link", "dot-dot detour"])
def test_refuses_to_write_onto_an_input_by_any_name(source: Path, tmp_path: Path, route: str) -> None:
    if route == "same path":
        target = source
    elif route == "hard link":
        target = tmp_path / "linked.png"
        os.link(source, target)
    elif route == "symbolic link":
        target = tmp_path / "alias.png"
        target.symlink_to(source)
    else:
        target = source.parent / ".." / "in" / source.name
    writer = OutputWriter(inputs=[source], overwrite=True)  # not even --overwrite may replace a source
    with pytest.raises(OutputRefused, match="input image"):
        writer.write_bytes(target, b"mask")
    assert source.read_bytes() == SOURCE_BYTES
    assert _leftovers(tmp_path) == [] and _leftovers(source.parent) == []


def test_an_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    existing = tmp_path / "chest_pneumonia.png"
    existing.write_bytes(b"the radiologist's own file")
    with pytest.raises(OutputRefused, match="already exists.*--overwrite"):
        OutputWriter().write_bytes(existing, b"overlay")
    assert existing.read_bytes() == b"the radiologist's own file"
    OutputWriter(overwrite=True).write_bytes(existing, b"overlay")
    assert existing.read_bytes() == b"overlay"


def test_a_file_this_run_created_may_be_rewritten(tmp_path: Path) -> None:
    writer = OutputWriter()
    summary = tmp_path / "summary.csv"
    writer.write_text(summary, "file,status\r\n")
    writer.write_text(summary, "file,status\r\na.png,ok\r\n")
    assert summary.read_bytes() == b"file,status\r\na.png,ok\r\n"  # text mode keeps the newlines it is given
    with pytest.raises(OutputRefused, match="already exists"):
        OutputWriter().write_text(summary, "another run")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    writer = OutputWriter()
    target = writer.write_bytes(tmp_path / "report.txt", b"first version")
    with pytest.raises(ZeroDivisionError), writer.open(target) as handle:
        handle.write(b"half of the second ver")
        raise ZeroDivisionError
    assert target.read_bytes() == b"first version"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_refuses_a_target_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "out"
    if kind == "folder":
        target.mkdir()
    else:
        os.mkfifo(target)
    with pytest.raises(OutputRefused, match="not a regular file"):
        OutputWriter(overwrite=True).write_bytes(target, b"x")


def test_a_file_appearing_during_the_write_is_not_clobbered(tmp_path: Path) -> None:
    target = tmp_path / "late.png"
    writer = OutputWriter()
    with pytest.raises(OutputRefused, match="already exists|appeared"), writer.open(target) as handle:
        handle.write(b"ours")
        target.write_bytes(b"someone else's")
    assert target.read_bytes() == b"someone else's"
    assert _leftovers(tmp_path) == []


def test_folder_refusals_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(OutputRefused, match="exists and is not a folder"):
        OutputWriter().folder(blocker)
    with pytest.raises(OutputRefused, match="cannot be created"):
        OutputWriter().folder(blocker / "sub")


def test_shown_escapes_control_characters_but_keeps_accents() -> None:
    assert shown("/tmp/a\nb\tc/Müller.png") == "/tmp/a\\nb\\tc/Müller.png"
    assert "\n" not in shown("x\r\n\x1b[31m")


def test_a_file_size_limit_mid_write_is_a_refusal_and_the_old_file_stays(tmp_path: Path) -> None:
    """Without a small disk to fill (tests/test_hostile_data_dir.py mounts one when it can), RLIMIT_FSIZE in a
    child process makes the write fail the same way part-way (EFBIG instead of ENOSPC)."""
    import subprocess
    import sys
    import textwrap

    target = tmp_path / "mask.png"
    target.write_bytes(b"first version")
    script = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from radassist.outputs import OutputRefused, OutputWriter
        try:
            OutputWriter(overwrite=True).write_bytes({str(target)!r}, bytes(1 << 20))
        except OutputRefused as refusal:
            print(refusal)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "cannot be written (File too large)" in run.stdout, (run.stdout, run.stderr)
    assert target.read_bytes() == b"first version"
    assert _leftovers(tmp_path) == []
