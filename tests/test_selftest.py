"""`radassist --selftest`: the check an installer and a site run on a new workstation.

The end-to-end test runs the real command in a child process (real models, real samples, the real
viewer offscreen) exactly as the bundle's smoke test does. The first-run guards (no network use, nothing
written inside the installation, user data outside it) are also tested on their own, each made to fail.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from radassist import selftest
from radassist.errors import RadAssistError
from radassist.inference.engine import sha256_of
from radassist.inference.registry import BUNDLED
from radassist.paths import models_dir

MODELS_PRESENT = all((models_dir() / card).is_file() for card in BUNDLED.values())
needs_models = pytest.mark.skipif(not MODELS_PRESENT, reason=f"the bundled models ({', '.join(BUNDLED.values())}) "
                                                             f"are not in {models_dir()} yet")


def run_selftest(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`radassist --selftest ...` in a child process, headless, as an installer runs it."""
    base = {k: v for k, v in os.environ.items() if k not in ("RADASSIST_DATA_DIR", "XDG_DATA_HOME")}
    return subprocess.run([sys.executable, "-m", "radassist.cli", "--selftest", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env={**base, "QT_QPA_PLATFORM": "offscreen", **env})


@pytest.fixture(scope="module")
def passed_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """A first run: a fresh home, so user data goes where platformdirs puts it on this OS."""
    home = tmp_path_factory.mktemp("home")
    result = run_selftest(env={"HOME": str(home)}, cwd=tmp_path_factory.mktemp("cwd"))
    return result, home / ".local" / "share" / "RadAssist"


def ok_steps(stdout: str) -> dict[str, str]:
    """step name -> detail, from the `  ok  <name>  <ms> ms  <detail>` lines."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^  ok  (.+?)\s+\d+ ms  (.*)$", stdout, re.MULTILINE)}


@needs_models
def test_selftest_reads_every_bundled_sample_and_shows_one_in_the_viewer(passed_run, repo_root):
    result, data_dir = passed_run
    assert result.returncode == 0, result.stderr
    steps = ok_steps(result.stdout)
    samples = sorted(p.name for p in (repo_root / "resources" / "samples").iterdir() if p.suffix in (".png", ".dcm"))
    assert list(steps) == ["installation files", "environment", "user data folder", "models", "dicom codecs",
                           *(f"read {name}" for name in samples), "viewer", "no network", "installation unchanged"]
    for name in samples:
        assert "report" in steps[f"read {name}"] and "impression:" in steps[f"read {name}"]
    assert "same probabilities as the core read" in steps["viewer"]
    assert steps["no network"] == "no network use (name lookup, connect, send, non-loopback bind)"
    assert result.stdout.splitlines()[-1].startswith("selftest passed in ")
    # user data went to the platform's folder (Linux: XDG data home); the viewer's layout and the
    # feedback store were not touched by the self-test
    assert steps["user data folder"] == f"{data_dir} (writable)"
    assert not (data_dir / "viewer.ini").exists()
    assert not (data_dir / "feedback").exists()


@needs_models
def test_the_models_step_names_each_bundled_model_with_its_card_hash(passed_run):
    result, _ = passed_run
    models_line = next(line for line in result.stdout.splitlines() if line.startswith("  ok  models"))
    for card_name in BUNDLED.values():
        card = json.loads((models_dir() / card_name).read_text(encoding="utf-8"))
        assert f"{card['model_id']} (sha256 {card['sha256'][:12]}" in models_line


@needs_models
def test_an_unreadable_sample_fails_the_read_step_with_exit_code_2(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not an image")
    result = run_selftest("--sample", str(bogus), "--no-viewer", env={"RADASSIST_DATA_DIR": str(tmp_path / "ud")})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("radassist: error: selftest failed: read notes.txt: ")
    assert "Traceback" not in result.stderr


def test_a_model_that_does_not_match_its_card_fails_the_models_step(tmp_path, repo_root):
    """Real engine, tiny real ONNX graphs under the bundled names; one file altered after its card was written."""
    import onnx
    from onnx import TensorProto, helper

    folder = tmp_path / "models"
    folder.mkdir()
    for card_name in BUNDLED.values():
        stem = card_name.removesuffix(".card.json")
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], stem,
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        onnx_path = folder / f"{stem}.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), onnx_path)
        (folder / card_name).write_text(json.dumps({"model_id": f"{stem}-test", "file": onnx_path.name,
                                                    "sha256": sha256_of(onnx_path)}))
    tampered = folder / f"{next(iter(BUNDLED.values())).removesuffix('.card.json')}.onnx"
    tampered.write_bytes(tampered.read_bytes() + b"\0")
    result = run_selftest("--no-viewer", env={"RADASSIST_MODELS_DIR": str(folder),
                                              "RADASSIST_DATA_DIR": str(tmp_path / "ud")})
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()
    assert len(error) == 1
    assert error[0].startswith(f"radassist: error: selftest failed: models: model file {tampered.name} "
                               "does not match its model card")
    assert "  ok  environment" in result.stdout and "  ok  models" not in result.stdout


def test_network_use_is_refused_and_remembered_while_guarded():
    originals = (socket.socket, socket.getaddrinfo)
    with selftest.refuse_sockets() as attempts:
        with pytest.raises(selftest.NetworkAttempted):
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:  # a library that swallows the error is still caught by the count
            udp.sendto(b"ping", ("::1", 9))
        except OSError:
            pass
        udp.close()
        with pytest.raises(selftest.NetworkAttempted):
            socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("192.0.2.1", 80))
    assert (socket.socket, socket.getaddrinfo) == originals
    assert len(attempts) == 3 and "getaddrinfo('127.0.0.1')" in attempts[0] and "sendto(family=" in attempts[1]
    with pytest.raises(selftest.NetworkAttempted, match="3 network use"):
        selftest._no_network(attempts)


def test_a_socket_created_and_closed_unused_is_not_network_use():
    """urllib3's import-time IPv6 probe (socket(AF_INET6), bind(('::1', 0)), close) and local AF_UNIX pairs
    are allowed; binding to a non-loopback address is counted."""
    with selftest.refuse_sockets() as attempts:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
        with pytest.raises(selftest.NetworkAttempted):
            socket.socket(socket.AF_INET).bind(("0.0.0.0", 0))
        assert len(attempts) == 1 and "bind(family=" in attempts.pop()
        left, right = socket.socketpair(socket.AF_UNIX)
        left.sendall(b"x")
        assert right.recv(1) == b"x"
        left.close()
        right.close()
    assert attempts == []


def test_a_file_written_inside_the_installation_is_reported(tmp_path):
    installation = tmp_path / "bundle"
    (installation / "models").mkdir(parents=True)
    (installation / "models" / "a.card.json").write_text("{}")
    before = selftest.snapshot([installation])
    assert "1 files" in selftest._unchanged([installation], before)
    (installation / "models" / "cache.bin").write_bytes(b"x")
    with pytest.raises(RadAssistError, match="cache.bin"):
        selftest._unchanged([installation], before)


def test_user_data_inside_the_installation_is_refused(tmp_path, monkeypatch):
    installation = tmp_path / "bundle"
    monkeypatch.setenv("RADASSIST_DATA_DIR", str(installation / "userdata"))
    with pytest.raises(RadAssistError, match="is inside the installation"):
        selftest._user_data_outside([installation])
    monkeypatch.setenv("RADASSIST_DATA_DIR", str(tmp_path / "elsewhere"))
    assert "writable" in selftest._user_data_outside([installation])
    assert list((tmp_path / "elsewhere").iterdir()) == []  # the writability probe leaves nothing behind


def test_compressed_dicom_round_trips_through_every_bundled_pixel_plugin():
    detail = selftest._dicom_codecs()
    for codec in ("JPEG 2000", "JPEG-LS", "RLE"):
        assert codec in detail
    assert "pillow" in detail and "pylibjpeg" in detail and "pyjpegls" in detail
    assert "gdcm" not in detail  # GDCM aborts the process on corrupt data; RadAssist does not ship it
