"""Background work for the viewer: image loading and the AI read run on a thread pool, never on the GUI thread.

A `Job` runs a plain function on QThreadPool and delivers its result (or its RadAssistError, or an
unexpected exception as a readable message) back on the GUI thread through queued signals.
Cancelling cannot interrupt onnxruntime mid-inference, so `cancel()` marks the job and its result is
discarded when it arrives; the viewer is free again at once. The function receives a `JobContext`:
it can check `cancelled` between stages and hand over an early, partial result (a preview picture).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from radassist.errors import RadAssistError

log = logging.getLogger(__name__)


class JobContext:
    """Handed to the job's function: lets it notice a cancel and deliver a partial result."""

    def __init__(self, job: Job):
        self._job = job

    @property
    def cancelled(self) -> bool:
        return self._job.cancelled

    def deliver_partial(self, value: Any) -> None:
        if not self.cancelled:
            self._job.partial.emit(value)


class Job(QObject):
    """One function on the thread pool. Connect the signals, then call `start()`."""

    succeeded = Signal(object)
    failed = Signal(str, bool)  # message, True when it is a RadAssistError (refused input, model problem)
    partial = Signal(object)  # an early result before the final one (e.g. a reduced-resolution picture)
    finished = Signal()  # after succeeded/failed, or after a cancel once the thread is done

    def __init__(self, function: Callable[[JobContext], Any], name: str):
        super().__init__()
        self.name = name
        self._function = function
        self._cancel = threading.Event()
        self.done = False

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def start(self, pool: QThreadPool | None = None) -> None:
        (pool or QThreadPool.globalInstance()).start(_Runner(self))

    def _run(self) -> None:
        context = JobContext(self)
        try:
            value = self._function(context)
        except RadAssistError as exc:
            if not self.cancelled:
                self.failed.emit(str(exc), True)
        except Exception as exc:  # a bug must show as a message, not kill the reading session
            log.error("%s failed:\n%s", self.name, traceback.format_exc())
            if not self.cancelled:
                self.failed.emit(f"{self.name} failed unexpectedly ({type(exc).__name__}: {exc})", False)
        else:
            if not self.cancelled:
                self.succeeded.emit(value)
        finally:
            self.done = True
            self.finished.emit()


class _Runner(QRunnable):
    def __init__(self, job: Job):
        super().__init__()
        self._job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        self._job._run()
