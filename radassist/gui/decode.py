"""Reading images for the viewer without freezing it.

The JPEG / JPEG-LS / JPEG 2000 decoders pydicom uses are C extensions that keep Python's global
interpreter lock while they work: a 3000 x 3000 JPEG 2000 radiograph holds it for ~5 s here, and a
worker *thread* would freeze the window for all that time. Compressed DICOMs are therefore decoded in
a separate process (one, kept for the session); uncompressed files and PNGs decode quickly and mostly
in numpy, which releases the lock, so they stay on the thread where they avoid a 36 MB copy between
processes. A decoder that crashes on a malformed file takes down the helper process, not the viewer.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from radassist.errors import InputRefused
from radassist.image import Radiograph
from radassist.io.preview import Preview

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

_HEAD_BYTES = 132


def is_compressed_dicom(path: Path) -> bool:
    """True for a DICOM file whose pixel data is compressed (its header says so)."""
    from pydicom.filereader import read_file_meta_info

    from radassist.io.dicom import looks_like_dicom

    try:
        with open(path, "rb") as handle:
            if not looks_like_dicom(handle.read(_HEAD_BYTES)):
                return False
        with warnings.catch_warnings():  # a malformed header is reported once, by read_image
            warnings.simplefilter("ignore")
            syntax = read_file_meta_info(path).get("TransferSyntaxUID")
    except Exception:  # unreadable headers are read_image's to report, with its own wording
        return False
    return bool(syntax is not None and syntax.is_compressed)


def _load_decoders() -> None:
    """Runs in the helper: import what its first decode needs."""
    from radassist.io import read_image  # noqa: F401
    from radassist.io.preview import read_preview  # noqa: F401


class DecoderProcess:
    """One helper process for compressed DICOMs, started on first use ('spawn': safe beside Qt threads)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        # imported here: process pools cost ~30 ms of start-up, and most sessions open uncompressed images
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def start(self) -> None:
        """Spawn the helper now, without waiting: a fresh process needs ~0.6 s for Python and the decoders'
        imports, which would otherwise delay the first compressed image (most PACS images are)."""
        self._executor().submit(_load_decoders)

    def read_image(self, path: Path) -> Radiograph:
        from radassist.io import read_image

        return self._run(read_image, path)

    def read_preview(self, path: Path) -> Preview | None:
        from radassist.io.preview import read_preview

        return self._run(read_preview, path)

    def _run(self, function, path: Path):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._executor().submit(function, path).result()
        except BrokenProcessPool:
            with self._lock:
                self._pool = None  # the next image gets a fresh process
            raise InputRefused(f"the decoder stopped while reading {path.name}: the file is likely corrupt") from None

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
