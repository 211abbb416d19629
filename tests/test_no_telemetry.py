"""No telemetry and no network: onnxruntime's usage telemetry is off in every entry point.

onnxruntime (1.2x-1.3x on Linux) writes a device id and a queue of usage events under
~/.cache/Microsoft/DeveloperTools/.onnxruntime the first time it creates a session, unless
ORT_DISABLE_TELEMETRY=1 is set before it loads. `import radassist` sets it, and every entry point
imports radassist first. Each check runs the real command in a child process with a fresh HOME and with
ORT_DISABLE_TELEMETRY removed from its environment (this pytest process has it set, having imported
radassist) and without the variables that tell onnxruntime it runs on a CI service (it writes nothing
there, so on CI the checks would pass without looking), then looks at what was written under that HOME. A control run of bare onnxruntime shows
that the check sees the telemetry files when they are written.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from radassist.paths import models_dir, resources_dir

TELEMETRY_DIR = Path(".cache") / "Microsoft"
SAMPLE = "pediatric_viral_pneumonia.png"
needs_unshare = pytest.mark.skipif(
    shutil.which("unshare") is None
    or subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0,
    reason="`unshare -rn` (an unprivileged network namespace) is not available here",
)


# onnxruntime 1.32 stays silent when it sees a CI service (measured: `CI=true` alone stops the device id);
# these are the variables its library names (strings of onnxruntime_pybind11_state), plus `CI` itself.
CI_MARKERS = {"CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
              "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER",
              "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"}


def child_env(home: Path) -> dict[str, str]:
    """The environment a user's shell would give: no telemetry switch of ours, no CI service, a fresh home."""
    dropped = {"ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "RADASSIST_DATA_DIR",
               *CI_MARKERS}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**env, "HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}


def run(command: list[str], home: Path, *, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=240, env=child_env(home),
                          cwd=home)


def radassist(*args: str) -> list[str]:
    return [sys.executable, "-m", "radassist.cli", *args]


def written_telemetry(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in (home / TELEMETRY_DIR).rglob("*"))


def test_control_bare_onnxruntime_writes_telemetry_under_home(tmp_path: Path):
    """Without radassist, onnxruntime writes its device id: the checks below can see it."""
    code = ("import onnxruntime as ort; "
            f"ort.InferenceSession({str(models_dir() / 'lungseg.onnx')!r}, providers=['CPUExecutionProvider'])")
    result = run([sys.executable, "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    written = written_telemetry(tmp_path)
    print("\nbare onnxruntime wrote:", written)
    assert any(path.endswith("deviceid") for path in written)


def test_cli_read_writes_no_telemetry(tmp_path: Path):
    result = run(radassist("read", str(resources_dir() / "samples" / SAMPLE), "--json"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"findings"' in result.stdout
    assert written_telemetry(tmp_path) == []


def test_viewer_writes_no_telemetry(tmp_path: Path):
    shot = tmp_path / "shot.png"
    result = run(radassist("view", str(resources_dir() / "samples" / SAMPLE), "--screenshot", str(shot)), tmp_path)
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 0
    assert written_telemetry(tmp_path) == []


@needs_unshare
def test_read_and_record_succeed_with_no_network_at_all(tmp_path: Path):
    """A read and a recorded read inside a network namespace with only a downed loopback (`unshare -rn`)."""
    sample = str(resources_dir() / "samples" / SAMPLE)
    offline = ("unshare", "-rn")
    probe = run([sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)"],
                tmp_path, prefix=offline)
    assert probe.returncode != 0 and "unreachable" in probe.stderr.lower()  # the namespace truly has no network
    result = run(radassist("read", sample, "--json", "--record"), tmp_path, prefix=offline)
    assert result.returncode == 0, result.stderr
    assert '"findings"' in result.stdout
    assert written_telemetry(tmp_path) == []


def test_slicer_module_turns_telemetry_off_when_slicer_loads_it(repo_root: Path):
    """Slicer imports the module file at start-up: the switch is a module-level statement there, and the
    file imports neither onnxruntime nor the core at module level (they load later, in methods)."""
    source = (repo_root / "installer" / "slicer" / "RadAssist" / "RadAssistModule" / "RadAssistModule.py").read_text()
    tree = ast.parse(source)
    switches = [node for node in tree.body if isinstance(node, ast.Assign)
                and ast.unparse(node) == "os.environ['ORT_DISABLE_TELEMETRY'] = '1'"]
    assert len(switches) == 1
    top_level_imports = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
                         for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert not top_level_imports & {"onnxruntime", "radassist"}
