"""`radassist batch --engine ray` on a real local Ray instance (the [scale] extra): a Ray actor process
SIGKILLed mid-run loses no image, and Ray keeps its logs and temporary files under the output folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_batch import (
    assert_no_traceback,
    batch_command,
    cmdline,
    image_tree,
    kill_a_busy_worker,
    result_files,
    summary_rows,
)

pytest.importorskip("ray", reason="the [scale] extra (ray) is not installed")


@pytest.fixture(scope="module")
def pediatric(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "pediatric_pneumonia" / "images").glob("*.png"))


def is_ray_actor(command: str) -> bool:
    return command.startswith("ray::BatchWorker")


@pytest.mark.slow
def test_a_killed_ray_actor_loses_no_image_and_ray_stays_in_the_output_folder(tmp_path, pediatric):
    src, out = tmp_path / "src", tmp_path / "out"
    names = image_tree(src, pediatric[16:28], folders=3)
    driver = subprocess.Popen(batch_command(src, "--out", out, "--workers", "2", "--engine", "ray"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = kill_a_busy_worker(driver, out, is_ray_actor)
    stdout, stderr = driver.communicate(timeout=240)
    proc = subprocess.CompletedProcess(driver.args, driver.returncode, stdout, stderr)
    assert proc.returncode == 0, stderr[-3000:]
    assert_no_traceback(proc)
    assert not cmdline(victim)
    rows = summary_rows(out)
    assert sorted(row["file"] for row in rows) == sorted(names)  # one row an image: none lost
    assert {row["status"] for row in rows} == {"read"}  # what the killed actor held was read elsewhere
    assert any(int(row["attempts"]) >= 2 for row in rows)
    assert result_files(out) == {f"results/{name}.json" for name in names}
    assert "worker(s) lost: Ray actor lost" in stderr
    assert stdout.startswith(f"{len(names)} images: {len(names)} read") and "ray imported: True" in stdout
    sessions = list((out / "ray").glob("session_2*"))
    assert len(sessions) == 1 and (sessions[0] / "logs").is_dir()
    assert (out / "ray" / "session_latest").resolve() == sessions[0].resolve()
    print(f"\nkill a Ray actor: {len(names)} images, {len(result_files(out))} results, "
          f"{sum(r['status'] == 'failed' for r in rows)} failed rows, exit code {proc.returncode}; "
          f"{stdout.strip().splitlines()[0]}")
