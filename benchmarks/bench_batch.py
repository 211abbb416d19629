"""Batch throughput: `radassist batch` with 1 and 2 workers on the local engine, on a local Ray instance, and on a
simulated multi-node Ray cluster (a head with no CPUs + two 1-CPU worker nodes, all on 127.0.0.1), with the
ratio 2-vs-1 workers for each.

Figures per run: the whole command (start-up, model load, Ray start, reading) and the steady rate the command
prints ("images/s after start-up": images read between its first and last result). The load average is
printed beside each run: on a shared machine it explains more than anything else.

Images: the first N PNGs of ../shared/data/pediatric_pneumonia and covid_hannover, copied into a temporary
folder (the batch reads only files inside its source folder; nothing is copied into the repo).
Run: .venv/bin/python benchmarks/bench_batch.py [--images N] [--skip-ray]
The simulated cluster's nodes are started with `ray start --block` and stopped through their own process ids.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit_json, print_table  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent
HEAD_PORT = 6389  # `ray start --head` on 127.0.0.1 needs a port outside 10002-19999
RATE = re.compile(r"([\d.]+) images/s after start-up")
QUIET_RAY = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


def image_folder(count: int, root: Path) -> Path:
    folder = root / "images"
    folder.mkdir()
    sources = sorted((SHARED / "pediatric_pneumonia/images").glob("*.png"))[: count // 2]
    sources += sorted((SHARED / "covid_hannover/images").glob("*.png"))[: count - len(sources)]
    for source in sources:
        shutil.copy(source, folder / source.name)
    return folder


def run_batch(folder: Path, out: Path, workers: int, *engine_args: str, env: dict | None = None,
              attempts: int = 2) -> dict:
    """One timed run; a run whose Ray could not start (Ray gives its node 30 s to register, which an overloaded
    machine can miss) is tried again once in a fresh output folder."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run([str(BIN / "radassist"), "batch", str(folder), "--out", str(out), "--workers", str(workers),
                           *engine_args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode == 2 and "cannot start a local Ray instance" in proc.stderr and attempts > 1:
        print(f"retrying {out.name}: {proc.stderr.strip().splitlines()[-1]}", flush=True)
        return run_batch(folder, out.with_name(out.name + "-again"), workers, *engine_args, env=env,
                         attempts=attempts - 1)
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}): {proc.stderr[-2000:]}")
    match = RATE.search(proc.stdout)
    line = proc.stdout.strip().splitlines()[0]
    if " 0 failed" not in line:
        raise SystemExit(f"images failed: {line}")
    run = {"seconds": round(seconds, 2), "steady_images_per_s": float(match.group(1)) if match else None,
           "outcome": line.split(" in ")[0],
           "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    print(f"{out.name}: {run}", flush=True)
    return run


class SimulatedCluster:
    """A Ray head with no CPUs and `nodes` worker nodes of one CPU each, all on this machine.

    Ray 2.60's `ray start` turns token authentication on: the cluster gets a throw-away token made here,
    passed (with usage statistics off) to every node and to the batch that joins it."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.temp = Path(tempfile.mkdtemp(prefix="rb-"))  # short: Ray's socket paths must stay < 108 bytes
        self.processes: list[subprocess.Popen] = []
        self.address = f"127.0.0.1:{HEAD_PORT}"
        self.env = {**QUIET_RAY, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}

    def __enter__(self) -> SimulatedCluster:
        ray = str(BIN / "ray")
        try:
            self._start("head", [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                                 f"--port={HEAD_PORT}", "--num-cpus=0", "--include-dashboard=false",
                                 "--disable-usage-stats", f"--temp-dir={self.temp}"])
            for node in range(self.nodes):
                self._start(f"node{node}", [ray, "start", "--block", f"--address={self.address}",
                                            "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
                                            f"--dashboard-agent-listen-port={52366 + node}"])
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self, name: str, command: list[str], timeout: float = 600) -> None:
        """Start one node and wait until it says it runs (its `ray start` prints that once it has joined)."""
        log = self.temp / f"{name}.log"
        with open(log, "w") as handle:
            self.processes.append(subprocess.Popen(command, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                                   start_new_session=True))
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if self.processes[-1].poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ray {name} did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(1)

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):  # worker nodes first, the head last
            if process.poll() is None:
                process.terminate()  # `ray start --block` stops its node's processes on SIGTERM
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        shutil.rmtree(self.temp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=80)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    runs: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = image_folder(args.images, Path(tmp))
        count = len(list(folder.iterdir()))
        out = Path(tmp)
        runs["local"] = {w: run_batch(folder, out / f"local{w}", w) for w in (1, 2)}
        if not args.skip_ray:
            runs["ray (local instance)"] = {w: run_batch(folder, out / f"ray{w}", w, "--engine", "ray") for w in (1, 2)}
            with SimulatedCluster(nodes=2) as cluster:
                runs["ray (head + 2 nodes)"] = {
                    w: run_batch(folder, out / f"cluster{w}", w, "--engine", "ray", "--ray-address", cluster.address,
                                 env=cluster.env)
                    for w in (1, 2)}
    rows, results = [], {"images": count, "cpus": os.cpu_count()}
    for engine, by_workers in runs.items():
        one = by_workers[1]
        for workers, run in by_workers.items():
            steady = run["steady_images_per_s"]
            ratio_steady = round(steady / one["steady_images_per_s"], 2) if steady and one["steady_images_per_s"] else None
            ratio_whole = round(one["seconds"] / run["seconds"], 2)
            rows.append([engine, workers, run["seconds"], round(count / run["seconds"], 2), steady, ratio_steady,
                         ratio_whole, f"{run['load_before']} -> {run['load_after']}"])
            results[f"{engine}|{workers}"] = {**run, "whole_images_per_s": round(count / run["seconds"], 2),
                                              "steady_vs_1_worker": ratio_steady, "whole_vs_1_worker": ratio_whole}
    print(f"outcome of each run: {sorted({run['outcome'] for by in runs.values() for run in by.values()})}")
    print_table(f"batch: {count} images, radassist batch as a command ({os.cpu_count()} CPUs)",
                ["engine", "workers", "seconds", "images/s whole", "images/s steady", "steady vs 1",
                 "whole vs 1", "load avg (1 min)"], rows)
    emit_json("batch", results)


if __name__ == "__main__":
    main()
