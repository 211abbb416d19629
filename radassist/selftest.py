"""`radassist selftest` (also `radassist --selftest`; front-end radassist/cli/selftest.py): prove an
installation works, offline, in seconds.

Why it exists: a reading-room workstation is installed once by someone who is not a developer, often
with no network. The self-test is what the installer runs after building and what a site runs after
copying the bundle: it loads the bundled models (sha256 checked against their cards), decodes
compressed DICOM through every pixel plugin the bundle ships, reads bundled samples end to end to a
draft report, shows the result once in the viewer (offscreen when there is no display), and checks the
first-run promises: the network is not used, nothing is written inside the installation, user data goes
to the platform's user-data folder. Each step prints one line with its time; the first failure ends
the run with `radassist: error: selftest failed: <step>: <reason>` and exit code 2.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radassist.errors import RadAssistError

SAMPLE_SUFFIXES = (".dcm", ".png")
# Pixel plugins the bundle must carry, per compressed transfer syntax (checked by `available_plugins`):
# the ones radassist.io.dicom.DECODING_PLUGINS tries.
REQUIRED_DECODER_PLUGINS = {
    "JPEGBaseline8BitDecoder": ("pillow", "pylibjpeg"),
    "JPEGLSLosslessDecoder": ("pylibjpeg", "pyjpegls"),
    "JPEG2000LosslessDecoder": ("pillow", "pylibjpeg"),
    "RLELosslessDecoder": ("pylibjpeg", "pydicom"),
}


def run_selftest(samples: list[Path], *, viewer: bool = True, screenshot: Path | None = None) -> None:
    """Every step in order, each printed as it passes; the first failing step raises RadAssistError."""
    from radassist import __version__
    from radassist.paths import install_root

    kind = "frozen bundle" if getattr(sys, "frozen", False) else "installation"
    print(f"radassist {__version__} self-test ({kind} at {install_root()})", flush=True)
    started = time.perf_counter()
    state = _State(samples=list(samples))
    read_only = read_only_folders()
    before = snapshot(read_only)
    with refuse_sockets() as attempts:
        _step("installation files", lambda: _installation_files(state))
        _step("environment", _environment)
        _step("user data folder", lambda: _user_data_outside(read_only))
        _step("models", lambda: _load_models(state))
        _step("dicom codecs", _dicom_codecs)
        for sample in state.samples:
            _step(f"read {sample.name}", functools.partial(_read_sample, state, sample))
        if viewer:
            _step("viewer", lambda: _show_in_viewer(state, screenshot))
    _step("no network", lambda: _no_network(attempts))
    _step("installation unchanged", lambda: _unchanged(read_only, before))
    print(f"selftest passed in {time.perf_counter() - started:.1f} s", flush=True)


@dataclass
class _State:
    """What one step hands to the next (the viewer step compares its read with the core read)."""

    samples: list[Path]
    cards: dict[str, str] = field(default_factory=dict)  # task -> bundled card path
    results: list[Any] = field(default_factory=list)  # ReadResult per sample


def _step(name: str, action: Callable[[], str]) -> None:
    """Run one step, print `ok <name> <ms> <detail>`, or stop the self-test with the step's reason."""
    start = time.perf_counter()
    try:
        detail = action()
    except Exception as exc:  # any failure, ours or a library's, is reported as the step's reason
        reason = str(exc) if isinstance(exc, RadAssistError) else f"{type(exc).__name__}: {exc}"
        raise RadAssistError(f"selftest failed: {name}: {reason}") from None
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    print(f"  ok  {name:<34} {elapsed_ms:8.0f} ms  {detail}", flush=True)


# --- first-run promises -------------------------------------------------------------------------------

class NetworkAttempted(OSError):
    """Raised in place of network use while `refuse_sockets` is active.

    An OSError, like what an offline machine gives, so code with an offline fallback takes it; the
    attempt is counted anyway and fails the self-test.
    """


NETWORK_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})


@contextmanager
def refuse_sockets() -> Iterator[list[str]]:
    """Make every use of the network raise; yield the list of attempts (a swallowed one still counts).

    Use means resolving a host name, connecting or sending on an IPv4/IPv6 socket, or binding one to a
    non-loopback address. Creating a socket, or binding it to loopback, is not: urllib3 (imported with
    pydicom when `requests` is installed) creates an IPv6 socket at import time and binds it to ('::1', 0)
    only to ask whether the OS supports IPv6, then closes it. Local AF_UNIX
    sockets are not the network. Covers Python-level sockets (urllib, http.client, requests, asyncio);
    native libraries that open sockets in C are outside its view (a read under `unshare -n` covers
    those: tests/test_no_telemetry.py).
    """
    attempts: list[str] = []
    original_socket, original_getaddrinfo = socket.socket, socket.getaddrinfo

    def refuse(what: str) -> None:
        attempts.append(what)
        raise NetworkAttempted("the network was used; RadAssist must work offline")

    class _GuardedSocket(original_socket):  # type: ignore[valid-type, misc]
        def _check(self, operation: str, address: object) -> None:
            if self.family in NETWORK_FAMILIES:
                refuse(f"{operation}(family={int(self.family)}, address={address!r})")

        def connect(self, address):  # type: ignore[override]
            self._check("connect", address)
            return super().connect(address)

        def connect_ex(self, address):  # type: ignore[override]
            self._check("connect", address)
            return super().connect_ex(address)

        def bind(self, address):  # type: ignore[override]
            if not _is_loopback(address):  # urllib3's IPv6 probe binds ('::1', 0): nothing leaves the host
                self._check("bind", address)
            return super().bind(address)

        def sendto(self, data, *flags_and_address):  # type: ignore[override]
            self._check("sendto", flags_and_address[-1] if flags_and_address else None)
            return super().sendto(data, *flags_and_address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        refuse(f"getaddrinfo({host!r})")

    socket.socket, socket.getaddrinfo = _GuardedSocket, guarded_getaddrinfo  # type: ignore[misc]
    try:
        yield attempts
    finally:
        socket.socket, socket.getaddrinfo = original_socket, original_getaddrinfo  # type: ignore[misc]


def _is_loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) and address else None
    try:
        return isinstance(host, str) and ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _no_network(attempts: list[str]) -> str:
    if attempts:
        raise NetworkAttempted(f"{len(attempts)} network use(s): {'; '.join(attempts[:3])}")
    return "no network use (name lookup, connect, send, non-loopback bind)"


def read_only_folders() -> list[Path]:
    """What must stay untouched: the whole bundle when frozen, else models/, resources/ and ui/.

    The bundle is the folder holding both the executable and the bundled files (sys._MEIPASS): the
    one-folder app on Linux/Windows, Contents/ of the macOS .app.
    """
    from radassist.paths import install_root, models_dir, resources_dir, ui_dir

    if getattr(sys, "frozen", False):
        executable_dir = Path(sys.executable).resolve().parent
        return [Path(os.path.commonpath([executable_dir, install_root().resolve()]))]
    return [models_dir().resolve(), resources_dir().resolve(), ui_dir().resolve()]


def snapshot(folders: list[Path]) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of every file under the folders."""
    state: dict[str, tuple[int, int]] = {}
    for folder in folders:
        for root, _dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                info = os.stat(path, follow_symlinks=False)
                state[path] = (info.st_size, info.st_mtime_ns)
    return state


def _unchanged(folders: list[Path], before: dict[str, tuple[int, int]]) -> str:
    after = snapshot(folders)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    if changed:
        raise RadAssistError(f"{len(changed)} file(s) inside the installation were written: {changed[:3]}")
    return f"{len(after)} files under {', '.join(str(f) for f in folders)} untouched"


def _user_data_outside(read_only: list[Path]) -> str:
    """User data must live outside the read-only installation, in a folder we can write."""
    from radassist.paths import user_data_dir

    folder = user_data_dir().resolve()
    for protected in read_only:
        if folder == protected or protected in folder.parents:
            raise RadAssistError(f"user data folder {folder} is inside the installation ({protected})")
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".selftest-"):
        pass  # created and removed: the folder is writable
    return f"{folder} (writable)"


# --- the working parts ---------------------------------------------------------------------------------

def _installation_files(state: _State) -> str:
    """The read-only files are where radassist.paths says; the bundled samples become the default reads."""
    from radassist.inference.registry import BUNDLED
    from radassist.paths import models_dir, resources_dir, ui_dir

    cards = [models_dir() / card for card in BUNDLED.values()]
    required = [*cards, resources_dir() / "knowledge" / "cxr.ttl", resources_dir() / "samples"]
    missing = [str(path) for path in required if not path.exists()]
    forms = sorted(ui_dir().glob("*.ui")) if ui_dir().is_dir() else []
    if not forms:
        missing.append(f"{ui_dir()}/*.ui")
    if missing:
        raise RadAssistError(f"missing from this installation: {', '.join(missing)}")
    bundled = sorted(p for p in (resources_dir() / "samples").iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)
    state.samples = state.samples or bundled
    return f"{len(cards)} model cards, knowledge graph, {len(forms)} viewer forms, {len(bundled)} samples"


def _environment() -> str:
    import onnxruntime as ort

    from radassist.inference.engine import choose_providers

    providers = choose_providers(ort.get_available_providers(), os.environ.get("RADASSIST_PROVIDER"))
    return (f"Python {sys.version.split()[0]} on {sys.platform}, onnxruntime {ort.__version__}, "
            f"providers {', '.join(p.removesuffix('ExecutionProvider') for p in providers)}")


def _load_models(state: _State) -> str:
    """Load each BUNDLED model (not a user-activated version): the engine checks its sha256 first."""
    from radassist.inference.engine import load_model
    from radassist.inference.registry import BUNDLED, bundled_card_path

    loaded = []
    for task in BUNDLED:
        card = bundled_card_path(task)
        session = load_model(str(card))
        state.cards[task] = str(card)
        loaded.append(f"{task} {session.card.model_id} (sha256 {session.card.sha256[:12]}, {session.provider})")
    return "; ".join(loaded)


def _dicom_codecs() -> str:
    """Every pixel plugin the bundle ships is present, and compressed pixels round-trip through them.

    A frozen bundle can lose a plugin silently (a hidden import or package metadata left out) and only
    show it on the first JPEG 2000 study from PACS; this step shows it here instead. The pixels are a
    12-bit copy of the bundled DICOM sample, compressed in memory.
    """
    import numpy as np
    import pydicom
    from pydicom.pixels import decoders, pixel_array
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless

    from radassist.paths import resources_dir

    for decoder_name, plugins in REQUIRED_DECODER_PLUGINS.items():
        decoder = getattr(decoders, decoder_name)
        missing = [p for p in plugins if p not in decoder.available_plugins]
        if missing:
            raise RadAssistError(f"{decoder.UID.name} cannot be decoded by {', '.join(missing)} "
                                 f"({decoder.missing_dependencies or 'plugin not available'})")
    source = next((resources_dir() / "samples").glob("*.dcm"))
    pixels = pydicom.dcmread(source).pixel_array[::4, ::4].astype(np.uint16) * 16
    checked = []
    for uid, encoder, readers in ((JPEG2000Lossless, "pylibjpeg", ("pillow", "pylibjpeg")),
                                  (JPEGLSLossless, "pyjpegls", ("pylibjpeg", "pyjpegls")),
                                  (RLELossless, "pydicom", ("pylibjpeg", "pydicom"))):
        dataset = pydicom.dcmread(source)
        dataset.Rows, dataset.Columns = pixels.shape
        dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset.PixelData = pixels.tobytes()
        dataset.compress(uid, encoding_plugin=encoder)
        for reader in readers:
            if not np.array_equal(pixel_array(dataset, decoding_plugin=reader), pixels):
                raise RadAssistError(f"{uid.name} decoded by {reader} differs from the original pixels")
        checked.append(f"{uid.name.split(' (')[0]} ({encoder} -> {'/'.join(readers)})")
    return f"plugins present; lossless round trips: {', '.join(checked)}"


def _read_sample(state: _State, sample: Path) -> str:
    from radassist.pipeline.read import ReadOptions, read_radiograph

    options = ReadOptions(classifier=state.cards["classifier"], lungseg=state.cards["lungseg"])
    result = read_radiograph(sample, options)
    if result.report is None or not result.report.sentences:
        raise RadAssistError(f"{sample.name} was read but no draft report was written")
    state.results.append(result)
    positives = [f"{f.display_name} {f.probability:.2f}" for f in result.findings if f.positive] or ["none"]
    return (f"positive: {', '.join(positives)}; report {len(result.report.sentences)} sentences; "
            f"impression: {result.report.section_text('IMPRESSION')[:80]}")


def _show_in_viewer(state: _State, screenshot: Path | None) -> str:
    """Open a JPEG 2000 copy of the DICOM sample in the real main window and wait for its AI read.

    This runs the viewer's own path: the compressed file is decoded in its helper process (the part
    of a frozen app most likely to break), the read runs on its worker thread, and the result is
    painted. A local event loop waits for it and ends; the window is closed, nothing keeps running.
    The user's viewer layout and feedback store are not touched (temporary settings, in-memory sink).
    """
    import importlib.util

    if importlib.util.find_spec("PySide6") is None:
        if getattr(sys, "frozen", False):
            raise RadAssistError("PySide6 is missing from the bundle")
        return "skipped: PySide6 is not installed (core-only installation)"
    from radassist.gui.selftest_viewer import read_in_viewer

    with tempfile.TemporaryDirectory(prefix="radassist-selftest-") as scratch:
        compressed = _jpeg2000_copy(_bundled_dicom_sample(), Path(scratch))
        shown, width, height, colours = read_in_viewer(compressed, Path(scratch), screenshot, VIEWER_TIMEOUT_S)
    return (f"JPEG 2000 copy of {_bundled_dicom_sample().name} opened (helper-process decode), AI read shown: "
            f"{len(shown.findings)} findings{_same_as_core_read(state, shown)}; "
            f"{width}x{height} window, {colours} colours")


VIEWER_TIMEOUT_S = 120


def _bundled_dicom_sample() -> Path:
    from radassist.paths import resources_dir

    return next((resources_dir() / "samples").glob("*.dcm"))


def _jpeg2000_copy(source: Path, folder: Path) -> Path:
    """A lossless JPEG 2000 copy of a DICOM file (what many PACS send), written to `folder`."""
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    dataset = pydicom.dcmread(source)
    dataset.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    target = folder / f"{source.stem}_jpeg2000.dcm"
    dataset.save_as(target, enforce_file_format=True)
    return target


def _same_as_core_read(state: _State, shown: Any) -> str:
    """The viewer read lossless-compressed copies of the same pixels: its probabilities must match."""
    sample = _bundled_dicom_sample()
    core = next((r for r in state.results if Path(r.meta.source_path).name == sample.name), None)
    if core is None or core.model_sha256 != shown.model_sha256:
        return ""  # that sample was not read here, or the viewer uses a user-activated model version
    difference = max(abs(a.probability - b.probability) for a, b in zip(core.findings, shown.findings, strict=True))
    if difference > 1e-4:
        raise RadAssistError(f"the viewer's probabilities differ from the core read by {difference:.4f}")
    return " (same probabilities as the core read)"
