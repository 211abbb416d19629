"""Ray actors (`--engine ray`): one actor a worker, each loading the models once; Ray is imported only here.

Images are streamed to the actors with back-pressure: at most IN_FLIGHT_PER_ACTOR images are queued on an
actor, the rest wait on the driver as paths. When an actor dies (its process killed, its node lost) the
images it held go back to the queue and a new actor is created wherever the cluster has room, up to
LOST_WORKERS_PER_WORKER replacements a worker.

Without --ray-address a private single-node Ray instance is started, listening on 127.0.0.1 only, with usage
statistics and the dashboard off; its logs and temporary files live in OUT/ray/. Ray binds Unix sockets under its
temporary folder and a socket path may be at most ~107 bytes, which OUT/ray/session_<date>_<pid>/sockets/...
often exceeds: Ray is therefore given a short symbolic link (made with tempfile) that points to OUT/ray,
so the files still land in the output folder. With --ray-address the batch joins that cluster (the image
paths must be readable at the same place on every node; results are written by the driver only).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from radassist.batch.local_engine import LOST_WORKERS_PER_WORKER, WorkersUnavailable
from radassist.batch.sources import BatchItem
from radassist.batch.work_queue import WorkQueue, every_worker_lost
from radassist.batch.worker import BatchWorker, ImageStatus, Outcome, WorkerOptions
from radassist.errors import InputRefused

IN_FLIGHT_PER_ACTOR = 2  # one being read, one waiting on the actor: no idle gap between images


@contextlib.contextmanager
def ray_session(ray_folder: Path, address: str | None, cpus: int) -> Iterator[object]:
    """Start (or join) Ray and yield the `ray` module; shut it down afterwards."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read by ray.init; no usage statistics leave the machine
    if not address:
        # On Linux, Ray swaps 127.0.0.1 for the machine's network address and listens there; this switch (named
        # for Windows and macOS, where it is the default) keeps a private instance on the loopback interface.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        import ray
    except ImportError:
        raise InputRefused("--engine ray needs Ray: pip install 'radassist[scale]'") from None
    link_folder = None
    try:
        if address:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray_folder.mkdir(parents=True, exist_ok=True)
            link_folder = Path(tempfile.mkdtemp(prefix="radassist-ray-"))
            (link_folder / "t").symlink_to(ray_folder.resolve(), target_is_directory=True)
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                     _temp_dir=str(link_folder / "t"), logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001  Ray raises a bare Exception when its node does not come up in time
        with contextlib.suppress(Exception):
            ray.shutdown()  # stops whatever part of a local instance did start
        if link_folder is not None:
            shutil.rmtree(link_folder, ignore_errors=True)
        where = f"connect to the Ray cluster at {address}" if address else "start a local Ray instance"
        raise InputRefused(f"cannot {where} ({type(exc).__name__}: {exc})") from None
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Ray prints lost-worker notices to stdout: keep it ours
            yield ray
    finally:
        ray.shutdown()
        if link_folder is not None:
            shutil.rmtree(link_folder, ignore_errors=True)
            _relink_latest_session(ray_folder)


def _relink_latest_session(ray_folder: Path) -> None:
    """Ray's session_latest link points through the removed short link; point it at the session beside it."""
    latest = ray_folder / "session_latest"
    if latest.is_symlink():
        session = Path(os.readlink(latest)).name
        latest.unlink()
        latest.symlink_to(session, target_is_directory=True)


class RayEngine:
    def __init__(self, workers: int, threads: int, options: WorkerOptions, ray_folder: Path,
                 address: str | None) -> None:
        self.workers, self.threads, self.options = workers, threads, options
        self.ray_folder, self.address = ray_folder, address  # Ray's logs and temporary files (local Ray only)
        self.lost_workers: list[str] = []
        self.notes: list[str] = []  # what the driver should tell the user (e.g. fewer workers than asked)

    def read(self, queue: WorkQueue, deliver: Callable[[Outcome], None]) -> None:
        with ray_session(self.ray_folder, self.address, cpus=max(self.workers, os.cpu_count() or 1)) as ray:
            self._read(ray, queue, deliver)

    def _read(self, ray, queue: WorkQueue, deliver: Callable[[Outcome], None]) -> None:
        from ray.exceptions import RayError, RayTaskError

        workers = self.workers
        cluster_cpus = int(ray.cluster_resources().get("CPU", 0))
        if cluster_cpus < 1:
            raise InputRefused("the Ray cluster has no CPUs to run batch workers on")
        if workers > cluster_cpus:
            self.notes.append(f"the Ray cluster has {cluster_cpus} CPUs: using {cluster_cpus} workers, not {workers}")
            workers = cluster_cpus
        actor_class = ray.remote(num_cpus=1, max_restarts=0)(BatchWorker).options(
            runtime_env={"env_vars": {"RADASSIST_THREADS": str(self.threads), "RAY_USAGE_STATS_ENABLED": "0"}})
        actors = [actor_class.remote(self.options) for _ in range(workers)]
        errors = [error for error in ray.get([actor.startup_error.remote() for actor in actors]) if error]
        if errors:
            raise WorkersUnavailable(f"the batch workers cannot read images: {errors[0]}")
        in_flight: dict[object, tuple[object, BatchItem]] = {}  # result reference -> (actor, image)
        replacements_left = LOST_WORKERS_PER_WORKER * workers

        def feed(actor) -> None:
            held = sum(1 for holder, _ in in_flight.values() if holder is actor)
            for _ in range(IN_FLIGHT_PER_ACTOR - held):
                item = queue.take()
                if item is None:
                    return
                in_flight[actor.read.remote(item)] = (actor, item)

        try:
            for actor in actors:
                feed(actor)
            while in_flight:
                [done], _ = ray.wait(list(in_flight), num_returns=1)
                actor, item = in_flight.pop(done)
                try:
                    outcome = ray.get(done)
                except RayTaskError as exc:  # BatchWorker.read does not raise; this is a bug, reported in the row
                    outcome = Outcome.without_result(item, ImageStatus.FAILED, f"unexpected error: {exc.cause!r}")
                except RayError as exc:  # the actor died (process killed, node lost) or cannot be reached
                    why = f"Ray actor lost ({type(exc).__name__})"
                    self.lost_workers.append(why)
                    self._requeue(queue, deliver, [item] + self._take_held(in_flight, actor), why)
                    ray.kill(actor, no_restart=True)
                    actors.remove(actor)
                    if len(queue) and replacements_left > 0:
                        replacements_left -= 1
                        actors.append(actor_class.remote(self.options))
                    if not actors:
                        break
                else:
                    deliver(outcome)
                for holder in actors:
                    feed(holder)
            for outcome in queue.give_up(every_worker_lost(self.lost_workers)):
                deliver(outcome)
        except BaseException:
            for _, held in in_flight.values():
                queue.put_back(held)
            raise

    @staticmethod
    def _take_held(in_flight: dict, actor) -> list[BatchItem]:
        """Remove and return the images queued on `actor`."""
        refs = [ref for ref, (holder, _) in in_flight.items() if holder is actor]
        return [in_flight.pop(ref)[1] for ref in refs]

    @staticmethod
    def _requeue(queue: WorkQueue, deliver: Callable[[Outcome], None], items: list[BatchItem], why: str) -> None:
        for item in items:
            if (outcome := queue.lost(item, why)) is not None:
                deliver(outcome)
