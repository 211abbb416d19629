"""Logging: -v/-vv and --log-file on the command line, the viewer's rotating log, and no PHI in any log.

The PHI checks log the way the code does (a file name as an argument, an exception naming a path, a
traceback through our code) with a patient's name, birth date and id inside file names, then read the
log file back: none of them may appear, while the code's own paths in the traceback stay readable.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from radassist import logs
from radassist.feedback import identity
from radassist.paths import resources_dir

FAMILY, GIVEN, BIRTH, PATIENT_ID = "Qzxfamilyname", "Qzxgivenname", "19480317", "PID7733991"
PHI = (FAMILY, GIVEN, BIRTH, PATIENT_ID)
PHI_FILE_NAME = f"{GIVEN} {FAMILY} {BIRTH} {PATIENT_ID}.dcm"


@pytest.fixture()
def restore_logging():
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("radassist").level)
    yield
    for handler in [h for h in root.handlers if h not in before[0]]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(before[1])
    logging.getLogger("radassist").setLevel(before[2])
    logging.captureWarnings(False)


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radassist.cli", *args], capture_output=True, text=True,
                          timeout=240, env={**os.environ, **(env or {})}, cwd=cwd)


def test_log_file_holds_no_patient_name_date_or_id(tmp_path: Path, restore_logging):
    log_file = tmp_path / "radassist.log"
    logs.configure_logging(2, log_file)
    phi_path = tmp_path / "incoming" / PHI_FILE_NAME
    log = logging.getLogger("radassist.io.dicom")
    log.debug("decoding %s failed: %s", phi_path.name, ValueError(f"bad data in '{phi_path}'"))
    log.info("opened %s", phi_path)
    log.warning("not listed: %s (%s)", f"{FAMILY}^{GIVEN}", "InvalidDicomError")
    log.info("report says: %s", f"Discussed with Mr {FAMILY}, DOB 17/03/1948, MRN {PATIENT_ID}.")
    try:
        identity._read_secret(phi_path)  # a real FileNotFoundError naming the path, raised in our own code
    except FileNotFoundError:
        log.exception("could not open the study")
    logging.getLogger("pydicom").warning("Invalid value for VR PN: '%s'", f"{FAMILY}^{GIVEN}")
    text = log_file.read_text(encoding="utf-8")
    print("\n" + text)
    for value in PHI:
        assert value.lower() not in text.lower(), value
    assert text.count("\n") >= 6 and "could not open the study" in text
    assert "FileNotFoundError" in text and logs.PATH_PLACEHOLDER in text
    assert identity.__file__ in text  # the traceback's own code path is kept: it is not patient data


def test_verbosity_levels():
    assert logs.levels_for(0) == (logging.INFO, logging.WARNING)
    assert logs.levels_for(1) == (logging.DEBUG, logging.INFO)
    assert logs.levels_for(3) == (logging.DEBUG, logging.DEBUG)


def test_cli_verbose_log_file_records_debug_detail_without_phi(tmp_path: Path):
    """`radassist -vv --log-file`: DEBUG records reach the file; the patient's file name does not."""
    sample = tmp_path / f"{GIVEN} {FAMILY} {BIRTH}.png"
    shutil.copy(resources_dir() / "samples" / "pediatric_normal.png", sample)
    log_file = tmp_path / "cli.log"
    quiet = cli("info", str(sample), env={"RADASSIST_DATA_DIR": str(tmp_path / "data")})
    assert quiet.returncode == 0 and quiet.stderr == ""
    result = cli("-vv", "--log-file", str(log_file), "info", str(sample), env={"RADASSIST_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    text = log_file.read_text(encoding="utf-8")
    assert " DEBUG radassist.cli: radassist " in text
    for value in (FAMILY, GIVEN, BIRTH):
        assert value not in text and value not in result.stderr


def test_cli_options_refused_with_one_line(tmp_path: Path):
    unwritable = cli("--log-file", str(tmp_path / "missing-folder" / "x.log"), "info", str(tmp_path / "x.png"))
    assert unwritable.returncode == 2
    assert unwritable.stderr.startswith("radassist: error: cannot write the log file")
    assert unwritable.stderr.count("\n") == 1
    unknown = cli("--loud", "info", "x.png")
    assert unknown.returncode == 2 and unknown.stderr.startswith("radassist: error: unknown option --loud")
    assert unknown.stderr.count("\n") == 1


def test_viewer_log_rotates_in_the_user_log_folder(tmp_path: Path, monkeypatch, restore_logging):
    monkeypatch.setenv("RADASSIST_LOG_DIR", str(tmp_path / "logs"))
    logs.configure_logging(0, viewer_log=True)
    log = logging.getLogger("radassist.gui")
    for number in range(logs.VIEWER_LOG_BYTES // 60 + 200):
        log.warning("line %06d of a long viewer session, padded to about sixty bytes", number)
    kept = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert kept[:2] == ["viewer.log", "viewer.log.1"]
    assert all((tmp_path / "logs" / name).stat().st_size <= logs.VIEWER_LOG_BYTES for name in kept)


def test_view_command_opens_the_viewer_log(tmp_path: Path):
    shot = tmp_path / "shot.png"
    env = {"RADASSIST_LOG_DIR": str(tmp_path / "logs"), "RADASSIST_DATA_DIR": str(tmp_path / "data"),
           "QT_QPA_PLATFORM": "offscreen"}
    result = cli("view", str(resources_dir() / "samples" / "pediatric_normal.png"), "--screenshot", str(shot),
                 env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "logs" / logs.VIEWER_LOG_NAME).is_file()


def test_viewer_log_follows_the_data_folder_override(tmp_path: Path, monkeypatch):
    from radassist.paths import user_log_dir

    monkeypatch.delenv("RADASSIST_LOG_DIR", raising=False)
    monkeypatch.setenv("RADASSIST_DATA_DIR", str(tmp_path / "site"))
    assert user_log_dir() == tmp_path / "site" / "logs"
    monkeypatch.delenv("RADASSIST_DATA_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert user_log_dir() == tmp_path / "state" / "RadAssist" / "log"
