"""DICOM -> Radiograph, for what PACS actually sends.

Handles ACR-NEMA files without preamble or File Meta (falls back to Implicit VR Little Endian),
compressed transfer syntaxes through pydicom's Pillow/pylibjpeg/pyjpegls plugins (not GDCM: see
DECODING_PLUGINS), Modality LUT / rescale, VOI LUT sequences and window presets, MONOCHROME1 inversion,
RGB conversion and multi-frame files (first frame). The source file is opened read-only and never written.
"""

from __future__ import annotations

import datetime
import logging
import re
import zlib
from pathlib import Path

import numpy as np

from radassist.errors import InputRefused
from radassist.image import ImageMetadata, Radiograph, WindowPreset, luminance
from radassist.io.decoder_output import quiet_decoders
from radassist.io.limits import (
    check_codestream_size,
    check_decoded_bytes,
    check_dimensions,
    check_inflated_size,
)

log = logging.getLogger(__name__)

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
UNSUPPORTED_SYNTAX_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.4.100": "MPEG-2 video",
    "1.2.840.10008.1.2.4.102": "MPEG-4 video",
    "1.2.840.10008.1.2.4.103": "MPEG-4 video",
    "1.2.840.10008.1.2.4.104": "MPEG-4 video",
    "1.2.840.10008.1.2.4.105": "MPEG-4 video",
    "1.2.840.10008.1.2.4.106": "MPEG-4 video",
    "1.2.840.10008.1.2.4.107": "HEVC video",
    "1.2.840.10008.1.2.4.108": "HEVC video",
}


def looks_like_dicom(head: bytes) -> bool:
    """Part 10 files have 'DICM' at byte 128; ACR-NEMA files start with a group 0x0008 element."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    # ACR-NEMA / preamble-less: first element tag (0008,xxxx) little endian, followed by a plausible length/VR
    return len(head) >= 8 and head[0:2] == b"\x08\x00" and head[3:4] == b"\x00"


def _dataset(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        _refuse_deflate_bomb(path)
        ds = pydicom.dcmread(str(path), force=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, IndexError,
            OverflowError, struct_error(), zlib.error, *element_errors()) as exc:
        raise InputRefused(f"{path.name} is not a readable DICOM file ({_short(exc)})") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise InputRefused(f"{path.name} is a DICOM file without an image (no pixel data)")
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        # ACR-NEMA style: no File Meta. Tell pydicom how the data set was encoded.
        from pydicom.dataset import FileMetaDataset

        if meta is None:
            ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = IMPLICIT_VR_LITTLE_ENDIAN
    return ds


def _refuse_deflate_bomb(path: Path) -> None:
    """For Deflated Explicit VR Little Endian, measure the inflated size in a stream before pydicom inflates it all.

    Reads the preamble and File Meta group the way pydicom does, so the deflate stream starts where pydicom's will.
    """
    from pydicom.filereader import read_dataset, read_preamble
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    with open(path, "rb") as stream:
        read_preamble(stream, force=True)
        file_meta = read_dataset(stream, is_implicit_VR=False, is_little_endian=True,
                                 stop_when=lambda tag, vr, length: tag.group != 2)
        if file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            check_inflated_size(stream, path.name)


def struct_error() -> type[Exception]:
    import struct

    return struct.error


def element_errors() -> tuple[type[Exception], ...]:
    """What pydicom raises when an element's bytes do not convert to a value.

    pydicom converts elements lazily, on first access, so these can come from ANY `ds.get`, not only dcmread:
    a length that is not a multiple of the VR's size (BytesLengthException) or an unknown VR
    (NotImplementedError). Both were found by fuzz/fuzz_reader.py.
    """
    from pydicom.errors import BytesLengthException

    return (BytesLengthException, NotImplementedError)


def _value(ds, keyword: str):
    """The element's value, or None when its bytes are malformed: one broken tag must not refuse the image."""
    try:
        return ds.get(keyword)
    except element_errors():
        return None


def _printable(text: str) -> str:
    """Text from the file, fit for a one-line message: whitespace runs -> one space, control characters -> '?'.

    A transfer syntax UID holding CR, NUL or an escape sequence otherwise reaches the CLI's error line (found by
    fuzz/fuzz_reader.py).
    """
    return "".join(ch if ch.isprintable() else "?" for ch in " ".join(text.split()))


def _short(exc: BaseException) -> str:
    text = _printable(str(exc))
    return text[:160] + ("..." if len(text) > 160 else "") if text else type(exc).__name__


def _text(ds, keyword: str) -> str | None:
    value = _value(ds, keyword)
    if value is None or value == "":
        return None
    try:
        text = str(value).strip()
    except Exception:
        return None
    return text or None


def _int(ds, keyword: str, default: int | None = None) -> int | None:
    value = _value(ds, keyword)
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _floats(value) -> list[float]:
    if value is None or value == "":
        return []
    items = value if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(
        value, (str, bytes)) else [value]
    out = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            return []
    return out


def _spacing(ds) -> tuple[tuple[float, float] | None, str | None]:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _floats(_value(ds, keyword))
        if len(values) == 2 and all(0 < v < 10 for v in values):
            return (values[0], values[1]), keyword
    return None, None


def _window_presets(ds) -> list[WindowPreset]:
    centers = _floats(_value(ds, "WindowCenter"))
    widths = _floats(_value(ds, "WindowWidth"))
    explanations = _value(ds, "WindowCenterWidthExplanation")
    if isinstance(explanations, str) or explanations is None:
        explanations = [explanations] if explanations else []
    presets = []
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        if width > 0:
            name = str(explanations[i]) if i < len(explanations) and explanations[i] else f"preset {i + 1}"
            presets.append(WindowPreset(center=center, width=width, name=name))
    return presets


def _syntax(ds) -> tuple[str, str]:
    uid = ds.file_meta.TransferSyntaxUID
    name = _printable(getattr(uid, "name", str(uid)) or str(uid))
    return _printable(str(uid)), UNSUPPORTED_SYNTAX_NAMES.get(str(uid), name)


# pydicom's decoding plugins, in the order RadAssist tries them. GDCM, first in pydicom's own order, is left out:
# on corrupt pixel data GDCM 3.2.6 kills the whole program, which no Python `except` can prevent. Uncaught C++
# exceptions (std::string in its JPEG 2000 codec, gdcm::Exception in its JPEG codec, std::length_error in JPEG-LS)
# call std::terminate, and a JPEG-LS frame of width 0 segfaults (all found by fuzz/fuzz_reader.py). pylibjpeg
# decodes every transfer syntax GDCM does. Pillow goes first because its libjpeg-turbo gives the same pixels as
# GDCM for lossy JPEG (pylibjpeg's libjpeg rounds its IDCT differently, by up to 1 grey level); on the test files
# every decoded image is unchanged. pydicom's own plugin lists are left untouched.
DECODING_PLUGINS = ("pillow", "pylibjpeg", "pyjpegls", "pydicom")


def _decode_without_gdcm(ds, frames: int) -> np.ndarray:
    """The first frame, from the first of DECODING_PLUGINS that decodes it (pydicom's own fallback, minus GDCM)."""
    from pydicom.pixels import get_decoder, pixel_array

    index = 0 if frames > 1 else None
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)  # NotImplementedError for a syntax nothing decodes
    if not decoder.is_encapsulated:
        return pixel_array(ds, index=index, raw=False)
    plugins = [plugin for plugin in DECODING_PLUGINS if plugin in decoder.available_plugins]
    if not plugins:
        raise NotImplementedError(f"no decoder other than GDCM for {decoder.UID.name}")
    failures = []
    for plugin in plugins:
        try:
            return pixel_array(ds, index=index, raw=False, decoding_plugin=plugin)
        except RuntimeError as exc:  # how pydicom reports that a plugin could not decode the frame
            failures.append(f"{plugin}: {exc}")
    raise RuntimeError("; ".join(failures))


def _decode_first_frame(ds, path: Path, frames: int) -> np.ndarray:
    uid, syntax_name = _syntax(ds)
    if uid in UNSUPPORTED_SYNTAX_NAMES:
        raise InputRefused(
            f"{path.name} is compressed as {syntax_name} (transfer syntax {uid}), which RadAssist cannot "
            "decode; ask PACS to send it uncompressed or as JPEG/JPEG 2000"
        )
    try:
        _refuse_mismatched_codestream(ds, frames)
        return _decode_without_gdcm(ds, frames)
    except NotImplementedError:
        raise InputRefused(
            f"{path.name} uses {syntax_name} (transfer syntax {uid}), which RadAssist cannot decode"
        ) from None
    except (RuntimeError, ValueError, AttributeError, TypeError, KeyError, IndexError, OverflowError,
            MemoryError, EOFError, OSError, struct_error(), *element_errors()) as exc:
        log.debug("decoding %s failed: %s", path.name, exc)
        raise _corrupt_pixel_data(path, syntax_name) from None
    except BaseException as exc:
        # pylibjpeg-rle is written in Rust: a panic on a malformed RLE segment arrives as
        # pyo3_runtime.PanicException, which derives from BaseException (so it also escapes pydicom's own
        # per-plugin `except Exception`) and cannot be imported by name. Refuse it; re-raise anything else.
        if not _is_decoder_panic(exc):
            raise
        log.debug("decoder panicked on %s: %s", path.name, exc)
        raise _corrupt_pixel_data(path, syntax_name) from None


def _refuse_mismatched_codestream(ds, frames: int) -> None:
    """Check the first frame's own JPEG / JPEG-LS / JPEG 2000 header against Rows x Columns before decoding it."""
    from pydicom.encaps import get_frame
    from pydicom.uid import JPEG2000TransferSyntaxes, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes

    uid = ds.file_meta.TransferSyntaxUID
    is_jpeg2000 = uid in JPEG2000TransferSyntaxes
    if is_jpeg2000 or uid in JPEGTransferSyntaxes or uid in JPEGLSTransferSyntaxes:
        frame = get_frame(ds.PixelData, 0, number_of_frames=frames)
        check_codestream_size(frame, is_jpeg2000, _int(ds, "Rows", 0) or 0, _int(ds, "Columns", 0) or 0)


def _corrupt_pixel_data(path: Path, syntax_name: str) -> InputRefused:
    return InputRefused(
        f"the pixel data of {path.name} is corrupt or truncated: it is declared as {syntax_name} "
        "but cannot be decoded"
    )


def _is_decoder_panic(exc: BaseException) -> bool:
    """A Rust panic inside a pyo3 decoder extension (found by fuzz/fuzz_reader.py in pylibjpeg-rle 2.2)."""
    return type(exc).__name__ == "PanicException" and type(exc).__module__ == "pyo3_runtime"


def _to_gray(pixels: np.ndarray, photometric: str) -> tuple[np.ndarray, str | None]:
    """Colour images become luminance (Rec. 601 weights), as PACS viewers show US/SC colour frames."""
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        return luminance(pixels), f"colour image ({photometric}) converted to greyscale"
    return pixels, None


_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def _age_years(ds) -> float | None:
    """Age at the study: PatientAge ("045Y", "006M", "010W", "003D"), else StudyDate - PatientBirthDate;
    None when neither is present and well formed (a malformed age is ignored, never an error)."""
    age = _text(ds, "PatientAge")
    match = re.fullmatch(r"(\d{1,3})\s*([DWMY])", (age or "").upper())
    if match:
        return round(int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2)], 3)
    birth, study = _text(ds, "PatientBirthDate"), _text(ds, "StudyDate")
    try:
        born = datetime.date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
        seen = datetime.date(int(study[:4]), int(study[4:6]), int(study[6:8]))
    except (TypeError, ValueError):
        return None
    days = (seen - born).days
    return round(days / 365.25, 3) if 0 <= days <= 130 * 365.25 else None


def read_dicom(path: Path) -> Radiograph:
    with quiet_decoders():
        return _read_dicom(path)


def read_metadata(ds, path: Path) -> ImageMetadata:
    """Everything but the pixels, with the size guard applied before anything is decoded."""
    rows, columns = _int(ds, "Rows", 0) or 0, _int(ds, "Columns", 0) or 0
    frames = _int(ds, "NumberOfFrames", 1) or 1
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    check_dimensions(rows, columns, frames, samples)
    bits_allocated = _int(ds, "BitsAllocated", 16) or 16
    # One frame is decoded (index=0), whatever the number of frames; a native file's other frames are in memory
    # already, bounded by the file size limit, and a deflated data set by MAX_INFLATED_BYTES.
    check_decoded_bytes(_printable(path.name), (columns, rows), samples, max(1, -(-bits_allocated // 8)))
    photometric = (_text(ds, "PhotometricInterpretation") or "MONOCHROME2").upper()
    uid, syntax_name = _syntax(ds)
    meta = ImageMetadata(
        source_path=str(path),
        file_format="DICOM",
        rows=rows,
        columns=columns,
        modality=_text(ds, "Modality"),
        photometric=photometric,
        bits_stored=_int(ds, "BitsStored"),
        transfer_syntax=syntax_name,
        transfer_syntax_uid=uid,
        view_position=_text(ds, "ViewPosition"),
        body_part=_text(ds, "BodyPartExamined"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        study_description=_text(ds, "StudyDescription"),
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        study_date=_text(ds, "StudyDate"),
        number_of_frames=frames,
        burned_in_annotation=_text(ds, "BurnedInAnnotation"),
    )
    meta.pixel_spacing_mm, meta.pixel_spacing_source = _spacing(ds)
    meta.patient_age_years = _age_years(ds)
    if frames > 1:
        meta.warnings.append(f"multi-frame image ({frames} frames): only the first frame is shown")
    return meta


def _read_dicom(path: Path) -> Radiograph:
    ds = _dataset(path)
    meta = read_metadata(ds, path)
    rows, columns, frames, photometric = meta.rows, meta.columns, meta.number_of_frames, meta.photometric

    stored = _decode_first_frame(ds, path, frames)
    if stored.ndim == 3 and stored.shape[-1] not in (3, 4):
        stored = stored[0]  # some decoders return (frames, rows, cols) even for index=0
    if stored.ndim not in (2, 3) or stored.shape[0] != rows or stored.shape[1] != columns:
        raise InputRefused(
            f"the pixel data of {path.name} does not match its declared size {rows} x {columns}"
        )
    pixels, note = _to_gray(stored, photometric)
    if note:
        meta.warnings.append(note)
        pixels = pixels.astype(np.float32)
    else:
        pixels = presentation_values(ds, stored, meta)
    if not np.all(np.isfinite(pixels)):
        raise InputRefused(f"the pixel data of {path.name} contains invalid (non-finite) values")
    return Radiograph(pixels=np.ascontiguousarray(pixels, dtype=np.float32), meta=meta)


def _refuse_short_lut(ds, keyword: str, name: str, meta: ImageMetadata) -> None:
    """A LUT whose data holds fewer entries than its descriptor declares cannot map the pixels: refuse the image.

    pydicom unpacks the declared number of entries and fails with struct.error (a VOI LUT declaring 65535 entries
    with 3 given, a Modality LUT declaring 4096 with 10: issue 21); guessing the missing entries would show
    values the modality never meant.
    """
    try:
        sequence = ds.get(keyword)
        item = sequence[0] if sequence else None
        descriptor = item.get("LUTDescriptor") if item is not None else None
        data = item["LUTData"] if item is not None and "LUTData" in item else None
        if not descriptor or len(descriptor) < 3 or data is None:
            return
        declared = int(descriptor[0]) or 2**16
        value = data.value
    except (*element_errors(), TypeError, ValueError, KeyError, IndexError):
        return  # unreadable LUT elements: pydicom's own errors are handled where the LUT is applied
    given = len(value) // 2 if isinstance(value, (bytes, bytearray)) else len(value or ())
    if given < declared:
        raise InputRefused(f"the {name} of {_printable(Path(meta.source_path).name)} declares {declared} entries "
                           f"but holds {given}; refusing to read it")


def presentation_values(ds, stored: np.ndarray, meta: ImageMetadata) -> np.ndarray:
    """Modality LUT / rescale, then VOI LUT sequence if no linear window is given, then MONOCHROME1 inversion."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    lut_errors = (ValueError, TypeError, IndexError, KeyError, AttributeError, struct_error(), *element_errors())
    _refuse_short_lut(ds, "ModalityLUTSequence", "Modality LUT", meta)
    try:
        values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
    except lut_errors as exc:
        meta.warnings.append(f"modality LUT ignored ({_short(exc)})")
        values = stored.astype(np.float32)
    presets = _window_presets(ds)
    if not presets and "VOILUTSequence" in ds:
        _refuse_short_lut(ds, "VOILUTSequence", "VOI LUT", meta)
        try:
            values = np.asarray(apply_voi_lut(values, ds, index=0), dtype=np.float32)
            meta.voi_lut_applied = True
        except lut_errors as exc:
            meta.warnings.append(f"VOI LUT sequence ignored ({_short(exc)})")
    if meta.photometric == "MONOCHROME1":
        # Invert around a fixed pivot and move the window centres with it, so presets keep their meaning.
        pivot = float(values.min()) + float(values.max())
        values = pivot - values
        presets = [WindowPreset(pivot - p.center, p.width, p.name) for p in presets]
    meta.window_presets = presets
    return values
