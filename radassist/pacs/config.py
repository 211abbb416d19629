"""The PACS configuration file: one TOML file for this AE, its peers, DICOMweb URLs and where results go.

Default location: `<user data>/pacs.toml` (RADASSIST_DATA_DIR moves it); `--config FILE` names another.
Command-line options override the file. Example (the README's PACS section documents every key):

    [local]
    ae_title = "RADASSIST"
    port = 11112
    bind = "127.0.0.1"
    allow = ["ORTHANC"]            # calling AE titles accepted; empty or absent = any

    [results]
    to = "orthanc"                 # a [[peer]] name (C-STORE) or a [[dicomweb]] name (STOW-RS); absent = keep local
    overlay = true                 # also send the AI overlays (presentation state + saliency capture), labelled
                                   # "AI — research use"

    [[peer]]
    name = "orthanc"
    ae_title = "ORTHANC"
    host = "127.0.0.1"
    port = 4242

    [[dicomweb]]
    name = "orthanc-web"
    url = "http://127.0.0.1:8042/dicom-web"
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from radassist.errors import InputRefused

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_AE_TITLE = "RADASSIST"
DEFAULT_PORT = 11112
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE VR: 16 chars, no backslash or control chars
_PEER_ADDRESS = re.compile(r"^(?P<aet>[^@]{1,16})@(?P<host>[^:@]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Peer:
    """A DICOM node RadAssist talks to (C-FIND/C-GET/C-MOVE/C-STORE)."""

    name: str
    ae_title: str
    host: str
    port: int


@dataclass(frozen=True)
class DicomWebPeer:
    """A DICOMweb server (QIDO-RS, WADO-RS, STOW-RS)."""

    name: str
    url: str


@dataclass(frozen=True)
class ResultsDestination:
    """Where the SR (and optionally the secondary capture) of each pre-read goes; both None = keep them local."""

    peer: Peer | None = None
    dicomweb: DicomWebPeer | None = None
    overlay: bool = True

    @property
    def enabled(self) -> bool:
        return self.peer is not None or self.dicomweb is not None


@dataclass(frozen=True)
class PacsConfig:
    ae_title: str = DEFAULT_AE_TITLE
    port: int = DEFAULT_PORT
    bind: str = "127.0.0.1"
    allow: tuple[str, ...] = ()  # calling AE titles accepted; empty = any
    spool: Path | None = None  # None = <user data>/pacs
    peers: tuple[Peer, ...] = ()
    dicomweb: tuple[DicomWebPeer, ...] = ()
    results: ResultsDestination = field(default_factory=ResultsDestination)

    def peer(self, name: str) -> Peer:
        for peer in self.peers:
            if name in (peer.name, peer.ae_title):
                return peer
        raise InputRefused(f"no PACS peer named '{name}' in the configuration")

    def dicomweb_peer(self, name: str) -> DicomWebPeer:
        for peer in self.dicomweb:
            if peer.name == name:
                return peer
        raise InputRefused(f"no DICOMweb server named '{name}' in the configuration")

    def spool_dir(self) -> Path:
        if self.spool is not None:
            return self.spool
        from radassist.paths import user_data_dir

        return user_data_dir() / "pacs"


def default_config_path() -> Path:
    from radassist.paths import user_data_dir

    return user_data_dir() / "pacs.toml"


def ae_title(value: str) -> str:
    """A valid AE title (stripped), or InputRefused."""
    title = value.strip()
    if not _AE_TITLE.match(title):
        raise InputRefused(f"'{value}' is not a DICOM AE title (1-16 printable characters, no backslash)")
    return title


def port_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise InputRefused(f"'{value}' is not a TCP port")
    port = int(value)
    if not 0 < port < 65536:
        raise InputRefused(f"port {port} is outside 1-65535")
    return port


def parse_peer_address(text: str) -> Peer:
    """`AET@HOST:PORT` (the --results-to form) -> Peer named after its AE title."""
    match = _PEER_ADDRESS.match(text.strip())
    if not match:
        raise InputRefused(f"'{text}' is not AET@HOST:PORT")
    title = ae_title(match["aet"])
    return Peer(name=title, ae_title=title, host=match["host"], port=port_number(match["port"]))


def parse_dicomweb_url(url: str) -> DicomWebPeer:
    if not re.match(r"^https?://[^\s/]+", url):
        raise InputRefused(f"'{url}' is not an http(s) DICOMweb URL")
    return DicomWebPeer(name=url, url=url.rstrip("/"))


def load_config(path: Path | None = None) -> PacsConfig:
    """The configuration in `path` (default: the user-data pacs.toml); defaults when the default file is absent."""
    explicit = path is not None
    path = Path(path) if explicit else default_config_path()
    if not path.is_file():
        if explicit:
            raise InputRefused(f"PACS configuration {path} does not exist")
        return PacsConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputRefused(f"PACS configuration {path.name} cannot be read: {exc}") from None
    return config_from_mapping(data, where=path.name)


def config_from_mapping(data: dict[str, Any], where: str = "configuration") -> PacsConfig:
    try:
        return _build(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputRefused(f"PACS {where} is malformed: {exc!r}") from None


def _build(data: dict[str, Any]) -> PacsConfig:
    local = data.get("local", {})
    peers = tuple(Peer(name=str(p["name"]), ae_title=ae_title(p["ae_title"]), host=str(p["host"]),
                       port=port_number(p["port"])) for p in data.get("peer", []))
    webs = tuple(replace(parse_dicomweb_url(str(w["url"])), name=str(w["name"])) for w in data.get("dicomweb", []))
    config = PacsConfig(
        ae_title=ae_title(local.get("ae_title", DEFAULT_AE_TITLE)),
        port=port_number(local.get("port", DEFAULT_PORT)),
        bind=str(local.get("bind", "127.0.0.1")),
        allow=tuple(ae_title(a) for a in local.get("allow", [])),
        spool=Path(local["spool"]).expanduser() if "spool" in local else None,
        peers=peers, dicomweb=webs,
    )
    results = data.get("results", {})
    destination = ResultsDestination(overlay=bool(results.get("overlay", True)))
    target = results.get("to")
    if target:
        if any(w.name == target for w in webs):
            destination = replace(destination, dicomweb=config.dicomweb_peer(target))
        else:
            destination = replace(destination, peer=config.peer(target))
    return replace(config, results=destination)
