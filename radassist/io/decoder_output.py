"""What C decoders print while they run: kept off the terminal, and read back as evidence of a damaged file.

libjpeg writes "Premature end of JPEG file" to stdout (through ITK) and libpng/libtiff write to stderr, straight
to the file descriptors, so Python-level redirection does not catch them. The CLI promises ONE error line on
stderr and `radassist info` promises JSON on stdout, so while a decoder runs, fd 1 and fd 2 point at a scratch
file. Readers look at what was written: for JPEG and PNG a decoder warning means missing or damaged image data
(a JPEG cut at half its length decodes to grey without an error), and the file is refused.

The redirection is process-wide, so nested and concurrent uses (the viewer decodes on worker threads) share one:
the first caller sets it up and the last one restores the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class DecoderOutput:
    """Filled in when the `captured_decoder_output` block ends."""

    text: str = ""

    def lines(self) -> list[str]:
        """The non-empty lines, made printable and cut to 160 characters (fit for a one-line refusal)."""
        return ["".join(ch if ch.isprintable() else "?" for ch in line.strip())[:160]
                for line in self.text.splitlines() if line.strip()]


class _Redirect:
    """Reference-counted redirection of fd 1 and fd 2 into one scratch file."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved: list[tuple[int, int]] = []
        self.sink = None

    def enter(self) -> int:
        """Redirect (if not already) and return the scratch file's current end: this caller's start offset."""
        with self.lock:
            if self.depth == 0:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                try:
                    self.sink = tempfile.TemporaryFile(prefix="radassist-decoder-")
                    self.saved = [(fd, os.dup(fd)) for fd in (1, 2)]
                    for fd, _ in self.saved:
                        os.dup2(self.sink.fileno(), fd)
                except OSError:  # no scratch space or no such descriptors: decode without capturing
                    self._restore()
                    return -1
            self.depth += 1
            return os.fstat(self.sink.fileno()).st_size if self.sink is not None else -1

    def leave(self, start: int) -> str:
        with self.lock:
            text = ""
            if self.sink is not None and start >= 0:
                with contextlib.suppress(OSError):
                    text = os.pread(self.sink.fileno(), 1 << 16, start).decode("utf-8", "replace")
            self.depth -= 1
            if self.depth == 0:
                self._restore()
            return text

    def _restore(self) -> None:
        for fd, saved in self.saved:
            os.dup2(saved, fd)
            os.close(saved)
        self.saved = []
        if self.sink is not None:
            self.sink.close()
            self.sink = None


_REDIRECT = _Redirect()


@contextlib.contextmanager
def captured_decoder_output() -> Iterator[DecoderOutput]:
    """Run decoders with fd 1 / fd 2, Python warnings and pydicom's log silenced; yields what they printed."""
    output = DecoderOutput()
    pydicom_log = logging.getLogger("pydicom")
    old_level = pydicom_log.level
    pydicom_log.setLevel(logging.CRITICAL)
    start = _REDIRECT.enter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield output
    finally:
        output.text = _REDIRECT.leave(start)
        pydicom_log.setLevel(old_level)


@contextlib.contextmanager
def quiet_decoders() -> Iterator[None]:
    """The same silence, when what the decoders say does not matter."""
    with captured_decoder_output():
        yield
