#!/usr/bin/env python3
"""libFuzzer target (atheris) for `radassist.io.read_image`: every input must end in a Radiograph or InputRefused.

Why a file and not bytes: read_image takes a path, and the path's suffix changes the route (a ".dcm" file
whose first bytes are not DICOM-like still goes to the DICOM reader; a ".png" one is refused unless its
magic bytes name a format). The FIRST BYTE of the input picks the suffix (even -> .dcm, odd -> .png) and
the WHOLE input is written, so unmodified seed files keep their meaning: a DICOM preamble (0x00) or an
ACR-NEMA group-0008 tag (0x08) gives .dcm, the PNG signature (0x89) gives .png.

Anything else ends the run as a crash: another exception escaping, a refusal that is not one printable line
(the CLI prints it as one line), anything printed on stdout or stderr while reading, a Radiograph that breaks its own
contract (float32, 2-D, finite, the shape its metadata declares, usable window presets), or a source file that
was written to. Hangs and memory blow-ups are caught by libFuzzer's -timeout and -rss_limit_mb. See
fuzz/README.md for how to run it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import atheris
import numpy as np

# Instrument the pure-Python code that parses hostile bytes, so libFuzzer gets coverage feedback from it.
# C decoders (libjpeg, libjpeg-turbo, OpenJPEG, CharLS, SimpleITK/ITK) are not instrumented but still run, so a
# segfault or abort inside them is caught as a crash.
with atheris.instrument_imports(include=["radassist", "pydicom", "pylibjpeg", "libjpeg", "openjpeg", "rle",
                                         "jpeg_ls", "PIL"]):
    import pydicom.pixel_data_handlers  # noqa: F401  (imported lazily by pydicom; import now to instrument)
    import pydicom.pixels.decoders.pillow  # noqa: F401
    import pydicom.pixels.decoders.pyjpegls  # noqa: F401
    import pydicom.pixels.decoders.pylibjpeg  # noqa: F401
    import pydicom.pixels.decoders.rle  # noqa: F401
    import pydicom.pixels.processing  # noqa: F401

    from radassist.errors import InputRefused
    from radassist.image import Radiograph
    from radassist.io import read_image
    from radassist.io.dicom import looks_like_dicom  # noqa: F401  (instrument radassist.io.dicom now)
    from radassist.io.raster import raster_format  # noqa: F401  (instrument radassist.io.raster now)
    from radassist.io.raster_checks import check_structure  # noqa: F401  (instrument radassist.io.raster_checks)

# One scratch folder per process, in RAM when /dev/shm exists: the input is rewritten on every execution.
# libFuzzer ends the process with C exit(), so Python's atexit never runs: the folder (two small files) stays.
_SCRATCH = Path(tempfile.mkdtemp(prefix="radassist-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
_STDERR_FILE = _SCRATCH / "stderr.txt"
_last_input: list[Path | None] = [None]  # the scratch file of the input being run (see keep_last_input)


# Formats chosen by suffix only (no magic bytes the reader looks at): the input's own first bytes pick them.
_SUFFIX_BY_START = ((b"\x1f\x8b", ".nii.gz"), ((348).to_bytes(4, "little"), ".nii"), (b"ObjectType", ".mha"),
                    (b"NDims", ".mha"), (b"NRRD", ".nrrd"))


def input_path(data: bytes) -> Path:
    """The scratch file for this input: a NIfTI / MetaImage / NRRD start picks that suffix, else the first byte
    picks .dcm (even) or .png (odd)."""
    suffix = next((suffix for start, suffix in _SUFFIX_BY_START if data.startswith(start)), None)
    if suffix is None:
        suffix = ".png" if data and data[0] & 1 else ".dcm"
    return _SCRATCH / f"input{suffix}"


@contextlib.contextmanager
def output_to_file() -> Iterator[None]:
    """Point fd 1 and fd 2 at a file while the reader runs: the CLI promises ONE line on stderr and `info` JSON on
    stdout, so reading prints nothing.

    fd-level, not sys.stderr, because C decoders write to the descriptors directly (libpng and libtiff to fd 2,
    libjpeg's "Premature end of JPEG file" through ITK to fd 1).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [(fd, os.dup(fd)) for fd in (1, 2)]
    with open(_STDERR_FILE, "wb") as sink:
        for fd, _ in saved:
            os.dup2(sink.fileno(), fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def check_radiograph(image: Radiograph) -> None:
    """The contract every consumer of a Radiograph relies on."""
    assert isinstance(image, Radiograph), f"read_image returned {type(image).__name__}"
    pixels = image.pixels
    assert pixels.dtype.name == "float32", f"pixels are {pixels.dtype}, not float32"
    assert pixels.ndim == 2, f"pixels have {pixels.ndim} dimensions"
    assert pixels.shape == (image.meta.rows, image.meta.columns), (
        f"pixels {pixels.shape} but metadata declares {image.meta.rows} x {image.meta.columns}")
    assert pixels.size > 0 and bool(np.isfinite(pixels).all()), "pixels are empty or not finite"
    for preset in image.meta.window_presets:
        assert math.isfinite(preset.center) and math.isfinite(preset.width) and preset.width > 0, (
            f"unusable window preset {preset}")
    window = image.default_window()
    assert math.isfinite(window.center) and math.isfinite(window.width), f"unusable default window {window}"


def TestOneInput(data: bytes) -> None:  # noqa: N802  (name atheris expects)
    path = input_path(data)
    path.write_bytes(data)
    _last_input[0] = path
    written_at = path.stat().st_mtime_ns
    try:
        with output_to_file():
            image = read_image(path)
    except InputRefused as refusal:
        image, reason = None, str(refusal)
        assert reason and reason.isprintable(), f"refusal is not one printable line: {reason!r}"
    printed = _STDERR_FILE.read_bytes()
    assert not printed, f"read_image printed to stdout/stderr: {printed[:300]!r}"
    assert path.stat().st_mtime_ns == written_at, "read_image wrote to the source file"
    if image is not None:
        check_radiograph(image)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    try:
        atheris.Fuzz()
    except RuntimeError:
        # A C++ exception escaping a decoder reaches atheris as "Caught an unknown exception!" and libFuzzer writes
        # no artifact for it (outside atheris the same input aborts Python): keep the input that was running.
        print(f"the input that was running is saved as {keep_last_input()}", file=sys.stderr)
        raise


def keep_last_input() -> Path | None:
    """Copy the input that was running to <artifact_prefix>native-crash-<sha1>, where libFuzzer puts its own."""
    if _last_input[0] is None:
        return None
    data = _last_input[0].read_bytes()
    prefix = next((arg.split("=", 1)[1] for arg in sys.argv if arg.startswith("-artifact_prefix=")), "./")
    kept = Path(f"{prefix}native-crash-{hashlib.sha1(data).hexdigest()}")
    kept.write_bytes(data)
    return kept


if __name__ == "__main__":
    main()
