"""One background thread working through a queue: the listener's pre-reader and its results sender.

Subclasses implement `handle(item)` (and may override `handle_error`); an exception in one item is handed to
`handle_error` and never stops the thread, so the listener keeps receiving whatever one item does.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class QueueWorker(Generic[Item]):
    def __init__(self, name: str):
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: Item) -> None:
        self._queue.put(item)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the item in hand, then end (items still queued stay on disk and are picked up at the next start)."""
        self.stopping.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def wait_idle(self, timeout: float) -> bool:
        """True once every submitted item was handled (tests, and the demo script)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.05)
        return False

    def handle(self, item: Item) -> None:
        raise NotImplementedError

    def handle_error(self, item: Item, exc: Exception) -> None:
        log.exception("%s: unexpected error", self._thread.name)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if not self.stopping.is_set():
                    self.handle(item)
            except Exception as exc:  # a bug in one item must not stop the thread
                self.handle_error(item, exc)
            finally:
                self._queue.task_done()
