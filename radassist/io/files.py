"""Which paths may be opened as inputs: regular files only, of a sane size, and inside the folder the user opened.

Opening a FIFO blocks until a writer comes, /dev/zero and /dev/urandom never end, a folder or a socket cannot be
read: every reader asks `regular_file` first, which looks at the path with `stat` (no open, so nothing blocks) and
refuses anything else in one sentence. `read_head` then opens the file non-blocking and checks the open
descriptor again, so a file swapped for a FIFO in between cannot hang us either.

Entries of a folder or a DICOMDIR go through `confined`: resolved (links followed) and refused unless they stay
inside the folder the user opened, so `..`, absolute paths and symbolic links cannot send the reader elsewhere.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from radassist.errors import InputRefused
from radassist.io.limits import MAX_FILE_BYTES
from radassist.outputs import shown

_KIND_BY_MODE = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def regular_file(path: str | os.PathLike[str], what: str = "an image file") -> os.stat_result:
    """stat() the path and refuse, in one sentence, anything that is not a regular file RadAssist may read."""
    path = Path(path)
    try:
        status = os.stat(path)
    except OSError as exc:
        raise _refusal(path, exc) from None
    except ValueError:  # a NUL byte in the path (a hostile MetaImage ElementDataFile, found by fuzzing)
        raise _unusable_path(path) from None
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in _KIND_BY_MODE if test(status.st_mode)), "not a regular file")
        raise InputRefused(f"{shown(path)} is {kind}, not {what}; RadAssist opens regular files only")
    if status.st_size > MAX_FILE_BYTES:
        raise InputRefused(f"{shown(path.name)} is {status.st_size / 2**20:.0f} MB, larger than any radiograph "
                           f"(limit {MAX_FILE_BYTES // 2**20} MB); refusing to read it")
    return status


def read_head(path: str | os.PathLike[str], size: int) -> bytes:
    """The first `size` bytes of a regular file (after `regular_file`); never blocks on a FIFO or a device."""
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise _refusal(path, exc) from None
    except ValueError:
        raise _unusable_path(path) from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # swapped after the stat
            raise InputRefused(f"{shown(path)} is not a regular file; RadAssist opens regular files only")
        return os.read(descriptor, size)
    except OSError as exc:
        raise _refusal(path, exc) from None
    finally:
        os.close(descriptor)


def confined(entry: str | os.PathLike[str], folder: str | os.PathLike[str]) -> Path:
    """`entry` resolved (links followed); InputRefused unless it stays inside `folder` (also resolved)."""
    root = _resolved(Path(folder))
    target = _resolved(Path(entry))
    if target != root and root not in target.parents:
        raise InputRefused(f"{shown(entry)} points outside the folder {shown(folder)} "
                           f"(to {shown(target)}); RadAssist reads only inside the folder it was given")
    return target


def _resolved(path: Path) -> Path:
    try:
        return path.resolve(strict=False)
    except RuntimeError:  # Python < 3.13 reports a symbolic-link loop this way
        raise InputRefused(f"{shown(path)} is a symbolic link loop") from None
    except OSError as exc:
        raise _refusal(path, exc) from None
    except ValueError:
        raise _unusable_path(path) from None


def _unusable_path(path: Path) -> InputRefused:
    return InputRefused(f"{shown(path)} is not a usable path (it contains a NUL byte)")


def _refusal(path: Path, exc: OSError) -> InputRefused:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR) and not os.path.lexists(path):
        return InputRefused(f"{shown(path)} does not exist")
    if exc.errno == errno.ELOOP:
        return InputRefused(f"{shown(path)} is a symbolic link loop")
    if exc.errno == errno.ENOENT:
        return InputRefused(f"{shown(path)} is a symbolic link to nothing (its target does not exist)")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InputRefused(f"{shown(path)} cannot be opened: permission denied")
    if exc.errno == errno.ENAMETOOLONG:
        return InputRefused(f"{shown(path)[:200]}... is not a usable path (the name is too long)")
    return InputRefused(f"{shown(path)} cannot be opened ({exc.strerror or exc})")
