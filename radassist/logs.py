"""Logging for every host: one set-up, levels from -v, an optional log file, and no PHI in any record.

Levels: RadAssist's own loggers (radassist.*) at INFO and everything else at WARNING by default; -v
makes RadAssist DEBUG and the rest INFO; -vv makes everything DEBUG. Records go to stderr and, when
asked, to a log file (`--log-file`); the viewer also keeps a rotating log in the user log folder.

No PHI in logs: file names and paths are where patient data reach log lines (a DICOM named after the
patient, an error naming the file). Every handler set up here formats through `PhiRedactingFormatter`:
an argument that is a path or a file name becomes <path>, a DICOM person name becomes [NAME], any other
text or exception has its paths replaced and goes through the report scrubber (names, dates, ids); so
does the formatted traceback. Paths inside the
installation (the code's own files in a traceback) are kept: they are needed to debug and hold no PHI.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path

from radassist.errors import InputRefused
from radassist.feedback.scrub import NAME, scrub_text
from radassist.paths import install_root, user_log_dir

PATH_PLACEHOLDER = "<path>"
VIEWER_LOG_NAME = "viewer.log"
VIEWER_LOG_BYTES = 2_000_000
VIEWER_LOG_BACKUPS = 3
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# A quoted string holding a path separator, or a run of path components; and a bare file name.
_QUOTED_PATH = re.compile(r"""(['"])((?:[A-Za-z]:)?[^'"\n]*[\\/][^'"\n]*)\1""")
_BARE_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[\\/][^\s'\":,;()\[\]]+)+[\\/]?")
_FILE_NAME = re.compile(r"[^\n]+\.[A-Za-z][A-Za-z0-9]{1,4}(?:\.gz)?")
_PERSON_NAME = re.compile(r"[^\n^=]*\^[^\n]*")  # a DICOM PN value: Family^Given^Middle


def _code_roots() -> tuple[str, ...]:
    """Folders whose paths are code, not data: the installation and the Python environment."""
    roots = {sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parent), str(install_root() / "radassist")}
    return tuple(sorted(root.rstrip("/\\") + os.sep for root in roots if root))


def redact_text(text: str) -> str:
    """`text` with paths outside the installation replaced and names, dates and ids scrubbed."""
    code = _code_roots()

    def keep_code(path: str) -> str | None:
        return path if path.startswith(code) else None

    text = _QUOTED_PATH.sub(lambda m: m.group(0) if keep_code(m.group(2)) else f"{m.group(1)}{PATH_PLACEHOLDER}"
                            f"{m.group(1)}", text)
    text = _BARE_PATH.sub(lambda m: keep_code(m.group(0)) or PATH_PLACEHOLDER, text)
    return scrub_text(text)


def redact_argument(value: object) -> object:
    """A log-call argument made safe: paths and file names replaced, text scrubbed, numbers kept."""
    if isinstance(value, os.PathLike):
        return PATH_PLACEHOLDER
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    if isinstance(value, str):
        if _FILE_NAME.fullmatch(value.strip()):
            return PATH_PLACEHOLDER
        return NAME if _PERSON_NAME.fullmatch(value.strip()) else redact_text(value)
    return value


class PhiRedactingFormatter(logging.Formatter):
    """Formats a record with its arguments and traceback redacted (the message template is code, kept)."""

    def format(self, record: logging.LogRecord) -> str:
        safe = logging.makeLogRecord(record.__dict__)
        if isinstance(safe.args, dict):
            safe.args = {key: redact_argument(value) for key, value in safe.args.items()}
        elif safe.args:
            safe.args = tuple(redact_argument(value) for value in safe.args)
        if safe.exc_info:
            safe.exc_text = redact_text(self.formatException(safe.exc_info))
            safe.exc_info = None
        if safe.stack_info:
            safe.stack_info = redact_text(safe.stack_info)
        return super().format(safe)


def levels_for(verbosity: int) -> tuple[int, int]:
    """(RadAssist's level, everyone else's) for 0, 1 (-v) or 2+ (-vv)."""
    if verbosity <= 0:
        return logging.INFO, logging.WARNING
    if verbosity == 1:
        return logging.DEBUG, logging.INFO
    return logging.DEBUG, logging.DEBUG


def viewer_log_path() -> Path:
    return user_log_dir() / VIEWER_LOG_NAME


def configure_logging(verbosity: int = 0, log_file: str | os.PathLike[str] | None = None, *,
                      viewer_log: bool = False) -> list[logging.Handler]:
    """Route all logging through redacting handlers; returns the handlers installed (replacing earlier ones)."""
    own_level, other_level = levels_for(verbosity)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_radassist", False)]:
        root.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(PhiRedactingFormatter(CONSOLE_FORMAT, TIME_FORMAT))
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        try:
            handlers.append(_file_handler(logging.FileHandler(Path(log_file), encoding="utf-8")))
        except OSError as exc:
            raise InputRefused(f"cannot write the log file {log_file}: {exc.strerror or exc}") from None
    if viewer_log:
        path = viewer_log_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(_file_handler(logging.handlers.RotatingFileHandler(
                path, maxBytes=VIEWER_LOG_BYTES, backupCount=VIEWER_LOG_BACKUPS, encoding="utf-8")))
        except OSError as exc:  # the viewer still works without its log; say so on stderr
            print(f"radassist: warning: no viewer log ({path.parent}: {exc.strerror or exc})", file=sys.stderr)
    for handler in handlers:
        handler._radassist = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(other_level)
    logging.getLogger("radassist").setLevel(own_level)
    logging.captureWarnings(True)
    return handlers


def _file_handler(handler: logging.FileHandler) -> logging.FileHandler:
    handler.setFormatter(PhiRedactingFormatter(FILE_FORMAT, TIME_FORMAT))
    return handler
