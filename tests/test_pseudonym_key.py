"""The site-level pseudonym key: two radiologists (two OS users, two user-data folders) on one site get
the same image keys in their stores and the same patient pseudonyms in their exports when the site
configured one key (RADASSIST_SITE_KEY_FILE, or site-pseudonym.key in the site configuration folder);
without it, each user keeps today's per-user secret. Bad settings are refused with one clear line."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from radassist.errors import InputRefused
from radassist.feedback.deid import Pseudonymizer
from radassist.feedback.identity import (
    SITE_KEY_FILE_NAME,
    image_key_for,
    installation_secret,
    pseudonym_secret,
    site_key_path,
)
from radassist.feedback.store import EventStore

UID = "1.2.826.0.1.3680043.8.498.4242"
PATIENT = "PatientID:SITE-TEST-1"


def as_user(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Switch to another OS user's user-data folder."""
    monkeypatch.setenv("RADASSIST_DATA_DIR", str(home / "data"))


def identity(tmp_path: Path) -> tuple[str, str, str]:
    """(store image key, export patient pseudonym, store's secret fingerprint) as this user sees them."""
    secret = pseudonym_secret()
    with EventStore(tmp_path / f"store-{secrets.token_hex(3)}.sqlite") as store:
        assert store.secret == secret
    key, _ = image_key_for(secret, sop_instance_uid=UID, pixels=None)
    return key, Pseudonymizer(secret).patient(PATIENT), secret.hex()


@pytest.fixture()
def no_site_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site configuration folder of our own (empty), and no site key variable."""
    folder = tmp_path / "etc-xdg"
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(folder))
    monkeypatch.delenv("RADASSIST_SITE_KEY_FILE", raising=False)
    return folder / "RadAssist"


def test_without_a_site_key_each_user_keeps_a_personal_secret(tmp_path, monkeypatch, no_site_config):
    as_user(monkeypatch, tmp_path / "alice")
    alice = identity(tmp_path)
    assert site_key_path() is None and pseudonym_secret() == installation_secret()
    as_user(monkeypatch, tmp_path / "bob")
    bob = identity(tmp_path)
    assert alice[0] != bob[0] and alice[1] != bob[1]


def test_a_site_key_from_the_environment_gives_every_user_the_same_pseudonyms(tmp_path, monkeypatch, no_site_config):
    key_file = tmp_path / "site.key"
    key_file.write_bytes(secrets.token_bytes(32))
    monkeypatch.setenv("RADASSIST_SITE_KEY_FILE", str(key_file))
    as_user(monkeypatch, tmp_path / "alice")
    alice = identity(tmp_path)
    as_user(monkeypatch, tmp_path / "bob")
    bob = identity(tmp_path)
    assert alice == bob
    assert pseudonym_secret() == key_file.read_bytes() != installation_secret()


def test_a_site_key_in_the_site_configuration_folder_is_found(tmp_path, monkeypatch, no_site_config):
    no_site_config.mkdir(parents=True)
    (no_site_config / SITE_KEY_FILE_NAME).write_bytes(secrets.token_bytes(32))
    as_user(monkeypatch, tmp_path / "alice")
    alice = identity(tmp_path)
    as_user(monkeypatch, tmp_path / "bob")
    assert identity(tmp_path) == alice
    assert site_key_path() == no_site_config / SITE_KEY_FILE_NAME


def test_a_store_made_under_one_key_refuses_another(tmp_path, monkeypatch, no_site_config):
    as_user(monkeypatch, tmp_path / "alice")
    with EventStore(tmp_path / "shared.sqlite"):
        pass
    key_file = tmp_path / "site.key"
    key_file.write_bytes(secrets.token_bytes(32))
    monkeypatch.setenv("RADASSIST_SITE_KEY_FILE", str(key_file))
    with pytest.raises(InputRefused, match="different secret key"):
        EventStore(tmp_path / "shared.sqlite")


@pytest.mark.parametrize(("content", "message"), [(None, "is not a file"), (b"short", "damaged")])
def test_a_missing_or_damaged_site_key_is_refused(tmp_path, monkeypatch, no_site_config, content, message):
    key_file = tmp_path / "site.key"
    if content is not None:
        key_file.write_bytes(content)
    monkeypatch.setenv("RADASSIST_SITE_KEY_FILE", str(key_file))
    as_user(monkeypatch, tmp_path / "alice")
    with pytest.raises(InputRefused, match=message):
        pseudonym_secret()


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("RADASSIST_THREADS", "two", "RADASSIST_THREADS='two' (threads per model session) must be a whole number"),
    ("RADASSIST_THREADS", "0", "must be a whole number from 1 to 256"),
    ("RADASSIST_PROVIDER", "gpu-please", "must be one of coreml, cpu, cuda"),
    ("RADASSIST_MODELS_DIR", "/nonexistent/models", "is not an existing folder"),
    ("RADASSIST_SITE_KEY_FILE", "/nonexistent/site.key", "is not an existing file"),
    ("RADASSIST_DATA_DIR", "", "is empty"),
])
def test_bad_environment_values_are_refused_with_one_line(tmp_path, variable, value, message):
    env = {**os.environ, "HOME": str(tmp_path), variable: value}
    result = subprocess.run([sys.executable, "-m", "radassist.cli", "info", str(tmp_path / "any.png")],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("radassist: error: "), result.stderr
    assert message in result.stderr


def test_good_environment_values_pass(tmp_path, data_dir):
    from radassist.environment import check_environment

    check_environment({"RADASSIST_THREADS": "2", "RADASSIST_PROVIDER": "CPUExecutionProvider",
                       "RADASSIST_DATA_DIR": str(tmp_path / "new"), "RADASSIST_MODELS_DIR": str(tmp_path)})
