"""Images still to read, and what happens to an image whose worker was lost.

An image in flight on a worker that dies (SIGKILL, out-of-memory kill, a lost Ray node) goes back to the
front of the queue to be read by another worker, up to `retries` times; after that it becomes a FAILED
outcome with the reason (an image that kills every worker that opens it must not kill the whole batch).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from radassist.batch.sources import BatchItem
from radassist.batch.worker import ImageStatus, Outcome


class WorkQueue:
    def __init__(self, items: Iterable[BatchItem], retries: int) -> None:
        self._pending: deque[BatchItem] = deque(items)
        self._attempts: dict[str, int] = {}
        self.retries = retries

    def __len__(self) -> int:
        return len(self._pending)

    def take(self) -> BatchItem | None:
        if not self._pending:
            return None
        item = self._pending.popleft()
        self._attempts[item.relative] = self._attempts.get(item.relative, 0) + 1
        return item

    def put_back(self, item: BatchItem) -> None:
        """An image handed out but not read because the batch is stopping (not a lost worker)."""
        self._attempts[item.relative] -= 1
        self._pending.appendleft(item)

    def attempts(self, item: BatchItem) -> int:
        return self._attempts.get(item.relative, 0)

    def lost(self, item: BatchItem, why: str) -> Outcome | None:
        """The worker reading `item` was lost: None when it will be read again, else its FAILED outcome."""
        if self.attempts(item) <= self.retries:
            self._pending.appendleft(item)
            return None
        tries = self.attempts(item)
        return Outcome.without_result(item, ImageStatus.FAILED,
                                      f"{why}; lost with its worker {tries} time{'s' if tries > 1 else ''}")

    def give_up(self, why: str) -> list[Outcome]:
        """FAILED outcomes for every image not yet read (no worker is left to read them)."""
        outcomes = [Outcome.without_result(item, ImageStatus.FAILED, why) for item in self._pending]
        self._pending.clear()
        return outcomes


def every_worker_lost(lost_workers: list[str]) -> str:
    """The reason given to images left when no worker remains (the last few losses)."""
    return "not read: every worker was lost (" + "; ".join(lost_workers[-3:]) + ")"
