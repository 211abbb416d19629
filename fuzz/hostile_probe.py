#!/usr/bin/env python3
"""The hostile inputs of issues 20 and 21, made here and run through the public CLI: one table row per case.

Each case is built in a work folder (the large ones once, then kept: they are small on disk), run as a child
process `radassist ...` under a 4 GB address-space limit (RLIMIT_AS, like `ulimit -v 4194304`) and a time limit,
and measured with wait4(): exit code, the stderr line(s), peak RSS of the child, wall time and CPU time (user +
system: on a shared, overloaded machine the wall time mostly measures the queue for a core).

    .venv/bin/python fuzz/hostile_probe.py [--work /tmp/radassist-hostile] [--only NAME ...] [--timeout 90]

Prints a Markdown table. The case builders are also used by tests/test_hostile_inputs.py, on smaller sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PNG = REPO / "resources" / "samples" / "pediatric_normal.png"
SAMPLE_DICOM = REPO / "resources" / "samples" / "nih_cxr14_no_finding.dcm"
MEMORY_CAP_BYTES = 4 * 2**30


# ---------------------------------------------------------------------------------------------- case builders
# Each builder writes into `folder` and returns the path(s) it made. Sizes are parameters so tests can use
# small versions of the same construction.


def png_rgba16(path: Path, side: int) -> Path:
    """A valid side x side RGBA 16-bit PNG of zeros (side=10950: 959 MB decoded, ~1 MB on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([16, 6, 0, 0, 0])  # 16 bits, colour type 6 (RGBA)
    row = bytes(1 + side * 8)  # filter byte 0 + zero samples
    deflater = zlib.compressobj(9)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header))
        pending = bytearray()
        for _ in range(side):
            pending += deflater.compress(row)
            if len(pending) > 2**20:
                out.write(chunk(b"IDAT", bytes(pending)))
                pending.clear()
        pending += deflater.flush()
        out.write(chunk(b"IDAT", bytes(pending)) + chunk(b"IEND", b""))
    return path


def tiff_pages(path: Path, pages: int, side: int) -> Path:
    """A valid multi-page TIFF: `pages` deflate-compressed side x side 8-bit pages of zeros."""
    from PIL import Image

    page = Image.new("L", (side, side))
    page.save(path, save_all=True, append_images=[page] * (pages - 1), compression="tiff_adobe_deflate")
    return path


def nifti_volume(path: Path, side: int) -> Path:
    """A valid gzipped NIfTI-1 of side^3 uint8 zeros, written as concatenated gzip members (fast to make)."""
    import struct

    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, side, side, side, 1, 1, 1, 1)  # dim
    struct.pack_into("<hh", header, 70, 2, 8)  # datatype uint8, bitpix 8
    struct.pack_into("<8f", header, 76, 1, 1, 1, 1, 1, 1, 1, 1)  # pixdim
    struct.pack_into("<f", header, 108, 352.0)  # vox_offset
    header[344:348] = b"n+1\x00"
    block = 64 * 2**20
    total = side ** 3
    member = gzip.compress(bytes(block), compresslevel=9)
    with open(path, "wb") as out:
        out.write(gzip.compress(bytes(header) + bytes(4), compresslevel=9))
        for _ in range(total // block):
            out.write(member)
        if total % block:
            out.write(gzip.compress(bytes(total % block), compresslevel=9))
    return path


def mha_volume(path: Path, size: tuple[int, int, int]) -> Path:
    """A valid compressed MetaImage of float zeros (2048 x 2048 x 1024: 16 GB decoded, ~16 MB on disk)."""
    columns, rows, slices = size
    deflater = zlib.compressobj(1)
    block = bytes(columns * rows * 4)
    with open(path, "wb") as out:
        body = bytearray()
        for _ in range(slices):
            body += deflater.compress(block)
        body += deflater.flush()
        out.write((f"ObjectType = Image\nNDims = 3\nDimSize = {columns} {rows} {slices}\n"
                   "ElementType = MET_FLOAT\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
                   f"CompressedData = True\nCompressedDataSize = {len(body)}\n"
                   "ElementDataFile = LOCAL\n").encode("ascii"))
        out.write(body)
    return path


def sparse_zero_file(path: Path, size: int) -> Path:
    with open(path, "wb") as out:
        out.truncate(size)
    return path


def deflated_dicom(path: Path, side: int) -> Path:
    """A valid Deflated Explicit VR Little Endian DICOM of side x side 16-bit pixels (a smooth ramp)."""
    import numpy as np
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = pydicom.dcmread(SAMPLE_DICOM)
    ramp = (np.add.outer(np.arange(side), np.arange(side)) % 4096).astype(np.uint16)
    ds.Rows = ds.Columns = side
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = ramp.tobytes()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def lut_mismatch_dicom(path: Path, which: str) -> Path:
    """The sample DICOM with a VOI LUT (declares 65535 entries, gives 3) or Modality LUT (4096, gives 10)."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(SAMPLE_DICOM)
    item = Dataset()
    if which == "voi":
        for keyword in ("WindowCenter", "WindowWidth"):
            if keyword in ds:
                delattr(ds, keyword)
        item.LUTDescriptor = [65535, 0, 16]
        item.add_new("LUTData", "US", [0, 100, 200])
        ds.VOILUTSequence = Sequence([item])
    else:
        item.LUTDescriptor = [4096, 0, 16]
        item.ModalityLUTType = "US"
        item.add_new("LUTData", "US", list(range(10)))
        ds.ModalityLUTSequence = Sequence([item])
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            if keyword in ds:
                delattr(ds, keyword)
    ds.save_as(path)
    return path


def truncated_copy(source: Path, path: Path, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def jpeg_of(source: Path, path: Path) -> Path:
    from PIL import Image

    Image.open(source).convert("L").save(path, quality=92)
    return path


def escaping_dicomdir(folder: Path) -> Path:
    """A folder whose DICOMDIR lists one image inside, one via `..`, one by absolute path, one via a symlink."""
    import pydicom
    from pydicom.filebase import DicomFileLike
    from pydicom.fileset import FileSet
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    outside = folder.parent / f"{folder.name}-outside"
    outside.mkdir(exist_ok=True)
    secret = outside / "OUTSIDE.dcm"
    shutil.copy(SAMPLE_DICOM, secret)
    file_set = FileSet()
    for number in range(4):
        ds = pydicom.dcmread(SAMPLE_DICOM)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyDate, ds.StudyTime, ds.StudyID = ds.get("StudyDate") or "20200101", "000000", "1"
        ds.SeriesNumber, ds.InstanceNumber = 1, number + 1
        ds.PatientID = ds.get("PatientID") or "probe"
        file_set.add(ds)
    file_set.write(folder)
    link = folder / "LINK.dcm"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(secret)
    # Point three records outside, then re-encode the DICOMDIR with pydicom's own writer so the record
    # offsets stay right (an edited record changes length; writing the dataset alone leaves stale offsets).
    file_set = FileSet(folder / "DICOMDIR")
    escapes = [["..", outside.name, "OUTSIDE.dcm"], [str(secret)], ["LINK.dcm"]]
    for instance, file_id in zip(list(file_set)[1:], escapes, strict=True):
        instance.node._record.ReferencedFileID = file_id
    with open(folder / "DICOMDIR", "wb") as out:
        file_set._write_dicomdir(DicomFileLike(out))
    return folder


def escaping_folder(folder: Path) -> Path:
    """A plain folder (no DICOMDIR) holding one image, a symlink to an image outside, a FIFO and a link to
    /dev/urandom: only the first may be read."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE_PNG, folder / "inside.png")
    outside = folder.parent / f"{folder.name}-outside.png"
    shutil.copy(SAMPLE_PNG, outside)
    for name, target in (("escape.png", outside), ("random.dcm", Path("/dev/urandom"))):
        link = folder / name
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(target)
    fifo = folder / "pipe.dcm"
    if not fifo.exists():
        os.mkfifo(fifo)
    return folder


# ------------------------------------------------------------------------------------------------- running


@dataclass
class Case:
    name: str
    build: Callable[[Path], list[str]]  # work folder -> radassist arguments
    env: dict[str, str] = field(default_factory=dict)
    no_file_override: bool = False  # as root, drop the capabilities that ignore file permissions (setpriv)
    check: Callable[[Path], str] | None = None  # after the run: a note on what was (not) changed


@dataclass
class Outcome:
    name: str
    command: str
    exit_code: int | None
    stderr: str
    peak_rss_mb: float
    seconds: float
    cpu_seconds: float
    note: str = ""


def run_case(case: Case, work: Path, timeout: float) -> Outcome:
    folder = work / case.name
    folder.mkdir(parents=True, exist_ok=True)
    arguments = case.build(folder)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RADASSIST_DATA_DIR": str(folder / "userdata"),
           **case.env}
    command = [sys.executable, "-m", "radassist.cli", *arguments]
    if case.no_file_override and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    err_path = folder / "stderr.txt"

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))

    started = time.perf_counter()
    with open(err_path, "wb") as err, open(os.devnull, "wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                 cwd=str(REPO), preexec_fn=limits, start_new_session=True)
        exit_code: int | None = None
        rusage = None
        while True:
            pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                exit_code = os.waitstatus_to_exitcode(status)
                break
            if time.perf_counter() - started > timeout:
                os.killpg(child.pid, signal.SIGKILL)
                _, status, rusage = os.wait4(child.pid, 0)
                exit_code = None
                break
            time.sleep(0.02)
        child.returncode = -1  # reaped by wait4 above
    seconds = time.perf_counter() - started
    stderr = err_path.read_text(encoding="utf-8", errors="replace").strip()
    note = case.check(folder) if case.check else ""
    shown_command = "radassist " + " ".join(_short_argument(a, folder) for a in arguments)
    return Outcome(case.name, shown_command, exit_code, stderr, rusage.ru_maxrss / 1024.0, seconds,
                   rusage.ru_utime + rusage.ru_stime, note)


def _short_argument(argument: str, folder: Path) -> str:
    return argument.replace(str(folder) + "/", "").replace(str(folder), ".").replace("\n", "\\n")


def _event_count(store: Path) -> str:
    """"<n> (integrity ok)" for a feedback store."""
    import sqlite3

    with sqlite3.connect(store) as connection:
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
        return f"{connection.execute('SELECT count(*) FROM events').fetchone()[0]} (integrity {check})"


def _cached(path: Path, build: Callable[[Path], Path]) -> Path:
    if not path.exists():
        build(path)
    return path


def cases(work: Path) -> list[Case]:
    big = work / "_big"
    big.mkdir(parents=True, exist_ok=True)

    def fifo(folder: Path) -> Path:
        path = folder / "image.dcm"
        if not path.exists():
            os.mkfifo(path)
        return path

    def mode000(folder: Path) -> list[str]:
        locked = folder / "locked"
        locked.mkdir(exist_ok=True)
        shutil.copy(SAMPLE_PNG, locked / "image.png")
        locked.chmod(0)
        return ["info", str(locked / "image.png")]

    def symlink_loop(folder: Path) -> list[str]:
        a, b = folder / "a.png", folder / "b.png"
        for link, target in ((a, b), (b, a)):
            if not link.is_symlink():
                link.symlink_to(target)
        return ["segment", str(a), "--out", str(folder / "mask.png")]

    def model_folder(folder: Path) -> list[str]:
        import json

        card = json.loads((REPO / "models" / "cxr_classifier.card.json").read_text(encoding="utf-8"))
        (folder / "models").mkdir(exist_ok=True)
        (folder / "models" / "cxr_classifier.onnx").mkdir(exist_ok=True)
        card["file"] = "cxr_classifier.onnx"
        card_path = folder / "models" / "cxr_classifier.card.json"
        card_path.write_text(json.dumps(card), encoding="utf-8")
        user_models = folder / "userdata" / "models"
        user_models.mkdir(parents=True, exist_ok=True)
        (user_models / "active.json").write_text(json.dumps({"classifier": [str(card_path)]}), encoding="utf-8")
        return ["read", str(SAMPLE_PNG)]

    def hard_link_out(folder: Path) -> list[str]:
        source = folder / "chest.png"
        shutil.copy(SAMPLE_PNG, source)
        link = folder / "mask.png"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.link(source, link)
        return ["segment", str(source), "--out", str(link)]

    def unchanged(name: str) -> Callable[[Path], str]:
        def check(folder: Path) -> str:
            same = (folder / name).read_bytes() == SAMPLE_PNG.read_bytes()
            return f"{name} {'unchanged' if same else 'MODIFIED'}"
        return check

    def saliency_existing(folder: Path) -> list[str]:
        out = folder / "overlays"
        out.mkdir(exist_ok=True)
        shutil.copy(SAMPLE_PNG, out / "pediatric_normal_pneumonia.png")
        return ["read", str(SAMPLE_PNG), "--saliency-out", str(out), "--no-report"]

    def readonly_data(folder: Path) -> list[str]:
        data = folder / "ro-data"
        data.mkdir(exist_ok=True)
        data.chmod(0o555)
        return ["read", str(SAMPLE_PNG), "--record", "--no-report"]

    def full_disk(folder: Path) -> list[str]:
        """A 512 KB tmpfs as the data folder, with a store holding one recorded read, then filled to the byte."""
        disk = folder / "disk"
        disk.mkdir(exist_ok=True)
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], check=True)
        env = {**os.environ, "RADASSIST_DATA_DIR": str(disk / "data")}
        subprocess.run([sys.executable, "-m", "radassist.cli", "read", str(SAMPLE_PNG), "--record", "--no-report"],
                       check=True, capture_output=True, env=env, cwd=str(REPO))
        case.env["RADASSIST_DATA_DIR"] = str(disk / "data")
        events_before["count"] = _event_count(disk / "data" / "feedback" / "feedback.sqlite")
        with open(disk / "filler", "wb", buffering=0) as out:
            for size in (65536, 4096, 512, 1):
                with contextlib.suppress(OSError):
                    while True:
                        out.write(bytes(size))
        return ["read", str(SAMPLE_PNG), "--record", "--no-report"]

    def store_kept(folder: Path) -> str:
        disk = folder / "disk"
        (disk / "filler").unlink()
        after = _event_count(disk / "data" / "feedback" / "feedback.sqlite")
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
        return f"store: {events_before['count']} events before, {after} after"

    events_before: dict[str, str] = {}

    case = Case("read-record-full-disk", full_disk, check=store_kept)
    jpeg = _cached(big / "chest.jpg", lambda p: jpeg_of(SAMPLE_PNG, p))
    half_jpeg = _cached(big / "chest_half.jpg", lambda p: truncated_copy(jpeg, p))
    return [
        Case("fifo-info", lambda f: ["info", str(fifo(f))]),
        Case("fifo-read", lambda f: ["read", str(fifo(f))]),
        Case("fifo-segment", lambda f: ["segment", str(fifo(f)), "--out", str(f / "m.png")]),
        Case("fifo-report", lambda f: ["report", str(fifo(f))]),
        Case("dev-zero", lambda f: ["info", "/dev/zero"]),
        Case("dev-urandom", lambda f: ["info", "/dev/urandom"]),
        Case("sparse-1GB-dcm", lambda f: ["info", str(_cached(big / "zeros.dcm",
                                                              lambda p: sparse_zero_file(p, 2**30)))]),
        Case("deflated-4096-dcm", lambda f: ["info", str(_cached(big / "deflated4096.dcm",
                                                                 lambda p: deflated_dicom(p, 4096)))]),
        Case("view-dicomdir-escape", lambda f: ["view", str(escaping_dicomdir(f / "study")),
                                                "--screenshot", str(f / "shot.png")]),
        Case("view-folder-escape", lambda f: ["view", str(escaping_folder(f / "images")),
                                              "--screenshot", str(f / "shot.png")]),
        Case("png-10950-rgba16", lambda f: ["info", str(_cached(big / "rgba16.png",
                                                                lambda p: png_rgba16(p, 10950)))]),
        Case("tiff-1024-pages", lambda f: ["info", str(_cached(big / "pages.tif",
                                                               lambda p: tiff_pages(p, 1024, 2048)))]),
        Case("nifti-2048^3", lambda f: ["info", str(_cached(big / "volume.nii.gz",
                                                            lambda p: nifti_volume(p, 2048)))]),
        Case("mha-2048x2048x1024-float", lambda f: ["info", str(_cached(
            big / "volume.mha", lambda p: mha_volume(p, (2048, 2048, 1024))))]),
        Case("voi-lut-65535-of-3", lambda f: ["read", str(lut_mismatch_dicom(f / "voi.dcm", "voi"))]),
        Case("modality-lut-4096-of-10", lambda f: ["read", str(lut_mismatch_dicom(f / "mod.dcm", "modality"))]),
        Case("file-in-mode-000-folder", mode000, no_file_override=True),
        Case("symlink-loop-segment", symlink_loop),
        Case("model-path-is-a-folder", model_folder),
        Case("missing-path-with-newline", lambda f: ["info", str(f / "no\nsuch.png")]),
        Case("jpeg-cut-at-half-info", lambda f: ["info", str(half_jpeg)]),
        Case("jpeg-cut-at-half-read", lambda f: ["read", str(half_jpeg)]),
        Case("segment-out-hard-link", hard_link_out, check=unchanged("chest.png")),
        Case("saliency-out-existing", saliency_existing, check=unchanged("overlays/pediatric_normal_pneumonia.png")),
        Case("read-record-readonly-data", readonly_data, no_file_override=True,
             env={"RADASSIST_DATA_DIR": ""}),
        case,
    ]


def small_volume_files(folder: Path) -> list[Path]:
    """Small VALID files of the formats the hostile cases use: fuzzing seeds (the bombs themselves are too big)."""
    import numpy as np
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    rows = (np.add.outer(np.arange(48), np.arange(64)) * 20).astype(np.uint16)
    volume = sitk.GetImageFromArray(np.stack([rows, rows[::-1]]))
    made = []
    for name, compress in (("seed.nii.gz", True), ("seed.nii", False), ("seed.mha", False),
                           ("seed_compressed.mha", True), ("seed.nrrd", False)):
        sitk.WriteImage(volume, str(folder / name), compress)
        made.append(folder / name)
    made.append(tiff_pages(folder / "seed_pages.tif", 3, 32))
    made.append(png_rgba16(folder / "seed_rgba16.png", 40))
    made.append(jpeg_of(SAMPLE_PNG, folder / "seed.jpg"))
    made.append(truncated_copy(folder / "seed.jpg", folder / "seed_half.jpg"))
    made.append(truncated_copy(SAMPLE_PNG, folder / "seed_half.png"))
    made.append(deflated_dicom(folder / "seed_deflated.dcm", 128))
    made.append(lut_mismatch_dicom(folder / "seed_voi_lut.dcm", "voi"))
    made.append(lut_mismatch_dicom(folder / "seed_modality_lut.dcm", "modality"))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/radassist-hostile"))
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--seeds", type=Path, metavar="DIR",
                        help="only write small valid seed files of these formats into DIR (for the fuzz corpus)")
    args = parser.parse_args()
    if args.seeds:
        for path in small_volume_files(args.seeds):
            print(path)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    args.work.chmod(0o755)
    print("| case | command | exit | stderr | peak RSS | wall time | CPU time |")
    print("|---|---|---|---|---|---|---|")
    for case in cases(args.work):
        if args.only and case.name not in args.only:
            continue
        if case.name == "read-record-readonly-data":
            case.env["RADASSIST_DATA_DIR"] = str(args.work / case.name / "ro-data")
        outcome = run_case(case, args.work, args.timeout)
        lines = outcome.stderr.splitlines() or [""]
        shown = lines[-1] if len(lines) == 1 else f"({len(lines)} lines) {lines[0]} ... {lines[-1]}"
        code = "killed at timeout" if outcome.exit_code is None else str(outcome.exit_code)
        note = f" [{outcome.note}]" if outcome.note else ""
        print(f"| {outcome.name} | `{outcome.command}` | {code} | {shown.replace('|', '/')}{note} | "
              f"{outcome.peak_rss_mb:.0f} MB | {outcome.seconds:.2f} s | {outcome.cpu_seconds:.2f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
