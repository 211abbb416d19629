"""Pseudonymous identities: the per-installation secret and the keyed hashes made from it.

Why keyed (HMAC) and not plain SHA-256: a SOP Instance UID or a patient id is short and structured, so
a plain hash can be reversed by anyone who can list candidate values (e.g. from the PACS). With a
secret that never leaves this installation, the keys in the event store and in an export cannot be
linked back to a patient without that secret.

Which secret: a site key when the site configured one, else this OS user's installation secret.
- Site key (several radiologists, one workstation or many, the same pseudonyms for the same patient):
  the file named by RADASSIST_SITE_KEY_FILE, else `site-pseudonym.key` in the site configuration
  folder (radassist.paths.site_config_dir(), /etc/xdg/RadAssist on Linux). 32 random bytes, e.g.
  `head -c 32 /dev/urandom > site-pseudonym.key`, readable by the radiologists' accounts only. It is
  never created by RadAssist: a site decides to have one.
- Otherwise the per-user secret in the user-data folder (file mode 0600), created on first use.
The same secret derives, under different purposes: image keys in the event store, replacement UIDs,
patient pseudonyms and date offsets in an export, so that repeated exports stay consistent with each
other. A store remembers the fingerprint of the secret that made it and refuses another one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np

from radassist.errors import InputRefused
from radassist.image import Radiograph
from radassist.paths import site_config_dir, user_data_dir

SECRET_FILE_NAME = "installation-secret.key"
SITE_KEY_FILE_NAME = "site-pseudonym.key"
SITE_KEY_ENV = "RADASSIST_SITE_KEY_FILE"
_SECRET_BYTES = 32


def site_key_path() -> Path | None:
    """The site key file this workstation is configured with, or None (then the per-user secret is used)."""
    configured = os.environ.get(SITE_KEY_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise InputRefused(f"{SITE_KEY_ENV} names {path}, which is not a file; fix the setting or unset it")
        return path
    default = site_config_dir() / SITE_KEY_FILE_NAME
    return default if default.is_file() else None


def secret_path(data_dir: Path | None = None) -> Path:
    return (data_dir or user_data_dir()) / SECRET_FILE_NAME


def pseudonym_secret() -> bytes:
    """The secret that keys every pseudonym: the site key if configured, else this user's installation secret."""
    site = site_key_path()
    return _read_secret(site) if site is not None else installation_secret()


def installation_secret(data_dir: Path | None = None) -> bytes:
    """Read this user's installation secret, creating it (mode 0600) on first use.

    Two processes starting at once must end up with the same secret: the new secret is written to a
    private temporary file and hard-linked into place, which fails if another process won the race.
    """
    path = secret_path(data_dir)
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(_SECRET_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        temporary.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    secret = path.read_bytes()
    if len(secret) != _SECRET_BYTES:
        raise InputRefused(
            f"the pseudonym key {path} is damaged ({len(secret)} bytes instead of {_SECRET_BYTES}); "
            "restore it from a backup: without it, recorded feedback cannot be matched to images"
        )
    return secret


def keyed_digest(secret: bytes, purpose: str, value: str | bytes) -> bytes:
    """HMAC-SHA256 of `value`, domain-separated by `purpose` so keys made for one use never equal another's."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return hmac.new(secret, purpose.encode("ascii") + b"\x00" + data, hashlib.sha256).digest()


def secret_fingerprint(secret: bytes) -> str:
    """A public, non-reversible name for a secret: tells whether two stores were keyed alike."""
    return keyed_digest(secret, "fingerprint", b"").hex()[:16]


def pixel_content_hash(pixels: np.ndarray) -> str:
    """SHA-256 of the decoded pixels (shape + float32 values): the identity of an image without UIDs."""
    array = np.ascontiguousarray(pixels, dtype=np.float32)
    digest = hashlib.sha256(repr(array.shape).encode("ascii"))
    digest.update(array.tobytes())
    return digest.hexdigest()


def image_key_for(secret: bytes, *, sop_instance_uid: str | None, pixels: np.ndarray | None) -> tuple[str, str]:
    """(image key, what it was made from): from the SOP Instance UID when there is one, else the pixels."""
    if sop_instance_uid:
        return "img-" + keyed_digest(secret, "image:sop", sop_instance_uid.strip()).hex()[:32], "sop_instance_uid"
    if pixels is None:
        raise InputRefused("this image has no SOP Instance UID and no pixels to identify it by")
    return "img-" + keyed_digest(secret, "image:pixels", pixel_content_hash(pixels)).hex()[:32], "pixel_content"


def image_key_of(radiograph: Radiograph, secret: bytes) -> tuple[str, str]:
    return image_key_for(secret, sop_instance_uid=radiograph.meta.sop_instance_uid, pixels=radiograph.pixels)
