"""The spool: every received instance as a DICOM Part 10 file, written atomically before it is acknowledged.

Layout: `<spool>/instances/<SOP Instance UID>.dcm`, with partial writes in `<spool>/incoming/` until they are
complete, fsynced and renamed into place (rename is atomic on one filesystem). So a file under instances/
is always whole: a crash leaves at most a `.part` file in incoming/, which `discard_partial()` removes at
start-up. The listener answers Success only after `store()` returned, so every acknowledged instance is on
disk. Source files are never modified after that: results are separate objects.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class Spool:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.instances = self.root / "instances"
        self.incoming = self.root / "incoming"
        self.instances.mkdir(parents=True, exist_ok=True)
        self.incoming.mkdir(parents=True, exist_ok=True)

    def path_for(self, sop_instance_uid: str) -> Path:
        if not _UID.match(sop_instance_uid) or len(sop_instance_uid) > 64:
            raise ValueError("not a DICOM UID")
        return self.instances / f"{sop_instance_uid}.dcm"

    def store(self, sop_instance_uid: str, part10: bytes) -> Path:
        """Write one instance atomically; returns its final path. Raises OSError (disk full, ...) with
        nothing left behind; a second copy of the same instance replaces the first atomically."""
        final = self.path_for(sop_instance_uid)
        atomic_write(final, part10, self.incoming / f"{sop_instance_uid}.{os.getpid()}.{threading.get_ident()}.part")
        return final

    def outbox(self, source_sop_instance_uid: str) -> Path:
        """Folder of the results made for one received instance, kept until they are sent."""
        return self.root / "outbox" / self.path_for(source_sop_instance_uid).stem

    def outboxes(self) -> list[Path]:
        """Result folders not sent yet (after a restart: what to send again), oldest first."""
        folder = self.root / "outbox"
        if not folder.is_dir():
            return []
        return sorted((p for p in folder.iterdir() if p.is_dir() and any(p.glob("*.dcm"))),
                      key=lambda p: p.stat().st_mtime)

    def discard_partial(self) -> int:
        """Remove writes a crash interrupted (never acknowledged); returns how many."""
        removed = 0
        for leftover in self.incoming.glob("*.part"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def files(self) -> Iterator[Path]:
        return iter(sorted(self.instances.glob("*.dcm")))


def atomic_write(final: Path, data: bytes, partial: Path | None = None) -> None:
    """`data` at `final`, whole or not at all: written to `partial`, fsynced, renamed, directory fsynced."""
    partial = partial or final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.part")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
