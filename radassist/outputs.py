"""Every file RadAssist writes goes through one `OutputWriter`: inputs are never touched, nothing is clobbered.

Rules (issue 21, "outputs never touch inputs"):
- a write onto an input image is refused, whatever name reaches it: the same path, a hard link (same inode),
  a symbolic link or a `..` detour all resolve to the same (device, inode) pair, which is what is compared;
- an existing file that this writer did not create in this run is never replaced unless `overwrite=True`
  (the commands' `--overwrite` flag); files it created itself may be rewritten (an incremental summary.csv);
- a write is atomic: the bytes go to a temporary file beside the target, are flushed to disk, then the temporary
  file is published under the target name (a hard link, which cannot clobber a file that appeared meanwhile, or a
  rename when the file system has no hard links or the target may be replaced). A failed or interrupted write
  leaves the old file, or nothing, never half a file;
- the target must be a regular file or not exist: a folder, FIFO or device given as an output is refused.

Failures (a folder that cannot be created, a read-only or full disk) become `OutputRefused`, which the CLI prints
as one line and exit code 2; the temporary file is removed.

    writer = OutputWriter(inputs=[args.path], overwrite=args.overwrite)
    with writer.open(args.out) as handle:
        Image.fromarray(mask).save(handle, format="PNG")
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from radassist.errors import RadAssistError

OVERWRITE_HELP = "replace output files that already exist (input images are never replaced)"


class OutputRefused(RadAssistError):
    """A file cannot or must not be written (it is an input, it exists, the disk is full or read-only)."""


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """The one `--overwrite` flag every command that writes files offers."""
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def shown(path: str | os.PathLike[str]) -> str:
    """A path fit for a one-line message: control characters (a newline in a file name) are escaped."""
    text = os.fspath(path)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what the path names after following links, or None when nothing is there."""
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise _unusable(path, exc) from None
    return status.st_dev, status.st_ino


def _unusable(path: Path, exc: OSError) -> OutputRefused:
    if exc.errno == errno.ELOOP:
        return OutputRefused(f"{shown(path)} is a symbolic link loop; give a file name to write to")
    return OutputRefused(f"{shown(path)} cannot be checked ({exc.strerror or exc})")


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.EDQUOT:
        return "the disk quota is exhausted"
    return exc.strerror or str(exc)


class OutputWriter:
    """One command run's writer: knows the run's inputs and the files it has created itself."""

    def __init__(self, inputs: Iterable[str | os.PathLike[str]] = (), overwrite: bool = False) -> None:
        self.overwrite = overwrite
        self._inputs: set[tuple[int, int]] = set()
        self._created: set[tuple[int, int]] = set()
        self.protect(*inputs)

    def protect(self, *paths: str | os.PathLike[str]) -> None:
        """Register input files: nothing this writer writes may land on them.

        An input that cannot be looked at (missing, a link loop, no permission) is the reader's to report.
        """
        for path in paths:
            with contextlib.suppress(OutputRefused):
                identity = _identity(Path(path))
                if identity is not None:
                    self._inputs.add(identity)

    def folder(self, path: str | os.PathLike[str]) -> Path:
        """Create an output folder (and its parents) if needed; a clean refusal when it cannot be."""
        folder = Path(path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise OutputRefused(f"{shown(folder)} exists and is not a folder") from None
        except OSError as exc:
            raise OutputRefused(f"the folder {shown(folder)} cannot be created ({_reason(exc)})") from None
        return folder

    def write_bytes(self, path: str | os.PathLike[str], data: bytes) -> Path:
        with self.open(path, "wb") as handle:
            handle.write(data)
        return Path(path)

    def write_text(self, path: str | os.PathLike[str], text: str) -> Path:
        with self.open(path, "w") as handle:
            handle.write(text)
        return Path(path)

    @contextlib.contextmanager
    def open(self, path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
        """A handle on a temporary file that becomes `path` when the block ends without an exception.

        `mode` is "wb" (bytes) or "w" (UTF-8 text, newlines written as given: fit for csv).
        """
        if mode not in ("wb", "w"):
            raise ValueError(f"OutputWriter.open mode must be 'wb' or 'w', not {mode!r}")
        target = Path(path)
        self._check_target(target)
        descriptor, temporary_path = _create_temporary(target)
        try:
            handle: IO = (os.fdopen(descriptor, "wb") if mode == "wb"
                          else os.fdopen(descriptor, "w", encoding="utf-8", newline=""))
            with handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            self._publish(temporary_path, target)
        except OSError as exc:
            raise OutputRefused(f"{shown(target)} cannot be written ({_reason(exc)})") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary_path.unlink()

    def check(self, path: str | os.PathLike[str]) -> None:
        """Raise OutputRefused now if writing `path` would be refused (to refuse a set of files before any)."""
        self._check_target(Path(path))

    def _check_target(self, target: Path) -> None:
        try:
            status = os.stat(target)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise _unusable(target, exc) from None
        identity = (status.st_dev, status.st_ino)
        if identity in self._inputs:
            raise OutputRefused(f"{shown(target)} is an input image (or a link to one); "
                                "RadAssist never writes over a source image")
        if not stat.S_ISREG(status.st_mode):
            raise OutputRefused(f"{shown(target)} is not a regular file; give a file name to write to")
        if identity not in self._created and not self.overwrite:
            raise OutputRefused(f"{shown(target)} already exists; RadAssist does not replace files it did "
                                "not write (use --overwrite to replace it)")

    def _publish(self, temporary: Path, target: Path) -> None:
        """Move the finished temporary file to `target`, re-checking the target at the last moment."""
        self._check_target(target)
        if _identity(target) is None:
            try:
                os.link(temporary, target)  # fails with EEXIST instead of replacing a file created meanwhile
            except FileExistsError:
                raise OutputRefused(f"{shown(target)} appeared while it was being written; "
                                    "it was left as it is") from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                    raise
                os.replace(temporary, target)  # a file system without hard links (FAT, some mounts)
        else:
            os.replace(temporary, target)
        identity = _identity(target)
        if identity is not None:
            self._created.add(identity)
        _sync_folder(target.parent)


def _create_temporary(target: Path) -> tuple[int, Path]:
    """A new, empty file beside `target` (same file system, so publishing it is a rename), mode 0666 & ~umask."""
    for _ in range(100):
        temporary = target.with_name(f".{target.name[:64]}.{secrets.token_hex(4)}.part")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), temporary
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputRefused(f"{shown(target)} cannot be written ({_reason(exc)})") from None
    raise OutputRefused(f"{shown(target)} cannot be written (no free temporary name beside it)")


def _sync_folder(folder: Path) -> None:
    """Make the new directory entry durable; not every platform can open a folder, which is fine."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
