"""A data folder that is read-only, cannot be created, or sits on a full disk: one line, exit 2, nothing lost.

The full disk is a real one: a 512 KB tmpfs mounted for the test (needs root or CAP_SYS_ADMIN; skipped otherwise,
and the RLIMIT_FSIZE test in test_outputs.py covers the writer without a mount). Root ignores file permissions,
so the read-only cases run the CLI under `setpriv` without CAP_DAC_OVERRIDE when the tests run as root.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "resources" / "samples" / "pediatric_normal.png"
AS_ROOT = os.geteuid() == 0


def radassist(*args: str, data_dir: Path, without_root_override: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "radassist.cli", *args]
    if without_root_override and AS_ROOT:
        if shutil.which("setpriv") is None:
            pytest.skip("root ignores file permissions and setpriv is not here to drop that")
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO,
                          env={**os.environ, "RADASSIST_DATA_DIR": str(data_dir)})


def one_error_line(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 2, (run.returncode, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("radassist: error: "), lines
    return lines[0]


def event_count(store: Path) -> int:
    with sqlite3.connect(store) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(connection.execute("SELECT count(*) FROM events").fetchone()[0])


@pytest.fixture()
def small_tmpfs(tmp_path: Path):
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system `folder` is on to the last byte; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    out.write(bytes(size))
            except OSError:
                continue
    return filler


@pytest.mark.parametrize("command", [["read", "--no-report"], ["segment", "--out", "OUT"], ["report"]])
def test_commands_that_only_read_work_where_the_data_folder_cannot_be_created(tmp_path: Path,
                                                                               command: list[str]) -> None:
    """A locked-down workstation (read-only home): reading needs no data folder, and makes none."""
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    args = [command[0], str(SAMPLE), *[str(tmp_path / "mask.png") if a == "OUT" else a for a in command[1:]]]
    run = radassist(*args, data_dir=parent / "data", without_root_override=True)
    assert run.returncode == 0, run.stderr
    assert list(parent.iterdir()) == []


def test_recording_where_the_data_folder_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    line = one_error_line(radassist("read", str(SAMPLE), "--record", "--no-report", data_dir=parent / "data",
                                    without_root_override=True))
    assert "data folder" in line and "cannot be created" in line and "RADASSIST_DATA_DIR" in line


def test_a_read_only_data_folder_refuses_recording_and_keeps_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = radassist("read", str(SAMPLE), "--record", "--no-report", data_dir=data)
    assert first.returncode == 0, first.stderr
    store = data / "feedback" / "feedback.sqlite"
    before = event_count(store)
    for folder in [data, *data.rglob("*")]:
        if folder.is_dir():
            folder.chmod(0o555)
    try:
        run = radassist("read", str(SAMPLE), "--record", "--no-report", data_dir=data, without_root_override=True)
    finally:
        for folder in [data, *data.rglob("*")]:
            if folder.is_dir():
                folder.chmod(0o755)
    one_error_line(run)
    assert event_count(store) == before


def test_a_full_disk_under_the_store_is_one_line_and_loses_nothing(small_tmpfs: Path) -> None:
    data = small_tmpfs / "data"
    first = radassist("read", str(SAMPLE), "--record", "--no-report", data_dir=data)
    assert first.returncode == 0, first.stderr
    store = data / "feedback" / "feedback.sqlite"
    before = event_count(store)
    filler = fill(small_tmpfs)
    line = one_error_line(radassist("read", str(SAMPLE), "--record", "--no-report", data_dir=data))
    assert "Traceback" not in line
    filler.unlink()
    assert event_count(store) == before


def test_the_output_writer_on_a_full_disk_keeps_the_old_file(small_tmpfs: Path) -> None:
    from radassist.outputs import OutputRefused, OutputWriter

    writer = OutputWriter()
    target = writer.write_bytes(small_tmpfs / "mask.png", b"first version")
    filler = fill(small_tmpfs)
    with pytest.raises(OutputRefused, match="the disk is full"):
        writer.write_bytes(target, bytes(64 * 1024))
    filler.unlink()
    assert target.read_bytes() == b"first version"
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["mask.png"]  # no temporary file left


def test_the_output_writer_on_a_read_only_mount(small_tmpfs: Path) -> None:
    from radassist.outputs import OutputRefused, OutputWriter

    (small_tmpfs / "kept.png").write_bytes(b"kept")
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    try:
        with pytest.raises(OutputRefused, match="read-only"):
            OutputWriter(overwrite=True).write_bytes(small_tmpfs / "kept.png", b"new")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_tmpfs)], check=True)
    assert (small_tmpfs / "kept.png").read_bytes() == b"kept"
