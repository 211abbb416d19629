"""Worker processes on this machine, each loading the models once, one image in flight per worker.

Each worker has its own pipe, so the driver always knows which image a worker holds. When a worker dies
(SIGKILL, out-of-memory kill, a crash in a native decoder) its process sentinel fires: the image it held
goes back to the queue for another worker (see WorkQueue.lost) and a replacement worker is started, up to
LOST_WORKERS_PER_WORKER replacements a worker slot. Workers ignore Ctrl+C (the driver handles it) and exit
when the driver goes away.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from radassist.batch.sources import BatchItem
from radassist.batch.work_queue import WorkQueue, every_worker_lost
from radassist.batch.worker import BatchWorker, Outcome, WorkerOptions
from radassist.errors import RadAssistError

LOST_WORKERS_PER_WORKER = 3  # replacements allowed per worker slot before the batch carries on without it


class WorkersUnavailable(RadAssistError):
    """No worker could load the models (the reason is the worker's own)."""


def describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _serve(connection: Connection, threads: int, options: WorkerOptions) -> None:
    """A worker process: report start-up, then read the images the driver sends until it sends None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["RADASSIST_THREADS"] = str(threads)
    worker = BatchWorker(options)
    try:
        connection.send(worker.startup_error())
        while (item := connection.recv()) is not None:
            connection.send(worker.read(item))
    except (EOFError, OSError):  # the driver is gone
        return


@dataclass
class _Slot:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    started: bool = False  # the worker has reported a successful start-up
    item: BatchItem | None = None  # the image it is reading


class LocalEngine:
    def __init__(self, workers: int, threads: int, options: WorkerOptions) -> None:
        self.workers, self.threads, self.options = workers, threads, options
        self._context = multiprocessing.get_context("spawn")  # no fork of a driver that may hold threads
        self.lost_workers: list[str] = []  # one line per lost worker: pid and how it ended
        self.notes: list[str] = []  # nothing to add for the user beyond the lost workers

    def _start(self) -> _Slot:
        driver_end, worker_end = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_serve, args=(worker_end, self.threads, self.options),
                                        name="radassist-batch-worker", daemon=True)
        process.start()
        worker_end.close()
        return _Slot(process, driver_end)

    def read(self, queue: WorkQueue, deliver: Callable[[Outcome], None]) -> None:
        slots = [self._start() for _ in range(self.workers)]
        replacements_left = LOST_WORKERS_PER_WORKER * self.workers
        try:
            while slots and (len(queue) or any(slot.item for slot in slots)):
                for slot in slots:
                    if slot.started and slot.item is None and (item := queue.take()) is not None:
                        slot.item = item
                        slot.connection.send(item)
                ready = set(wait([slot.connection for slot in slots] + [slot.process.sentinel for slot in slots]))
                for slot in list(slots):
                    message, alive = self._receive(slot, ready)
                    if message is not None:
                        self._handle(slot, message, deliver)
                    if alive:
                        continue
                    slots.remove(slot)
                    why = self._lost(slot)
                    if slot.item is not None and (outcome := queue.lost(slot.item, why)) is not None:
                        deliver(outcome)
                    if len(queue) and replacements_left > 0:
                        replacements_left -= 1
                        slots.append(self._start())
            for outcome in queue.give_up(every_worker_lost(self.lost_workers)):
                deliver(outcome)
        except BaseException:
            for slot in slots:
                if slot.item is not None:
                    queue.put_back(slot.item)
            raise
        finally:
            self._stop(slots)

    @staticmethod
    def _receive(slot: _Slot, ready: set) -> tuple[object | None, bool]:
        """(the message the worker sent or None, whether the worker is still alive)."""
        if slot.connection in ready or slot.connection.poll():
            try:
                return slot.connection.recv(), True
            except (EOFError, OSError):
                return None, False
        return None, slot.process.sentinel not in ready

    def _handle(self, slot: _Slot, message: object, deliver: Callable[[Outcome], None]) -> None:
        if isinstance(message, Outcome):
            slot.item = None
            deliver(message)
        elif message:  # the start-up report: an error text
            raise WorkersUnavailable(f"the batch workers cannot read images: {message}")
        else:
            slot.started = True

    def _lost(self, slot: _Slot) -> str:
        slot.process.join(timeout=5)
        slot.connection.close()
        held = "while reading an image" if slot.item is not None else "between images"  # no file name: no PHI
        why = f"worker process {slot.process.pid} {describe_exit(slot.process.exitcode)} {held}"
        self.lost_workers.append(why)
        return why

    @staticmethod
    def _stop(slots: list[_Slot]) -> None:
        for slot in slots:
            try:
                slot.connection.send(None)
            except (OSError, ValueError):
                pass
        for slot in slots:
            slot.process.join(timeout=10)
            if slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(timeout=5)
            slot.connection.close()
