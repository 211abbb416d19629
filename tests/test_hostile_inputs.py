"""Hostile inputs of issues 20 and 21 through the public CLI: exit 2, one line, bounded memory and time.

Inputs are built by fuzz/hostile_probe.py (the script that measures the full-size table), here at sizes that
still cross each limit but build in a second or two. Each CLI run is a child process measured with wait4().
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from radassist.io.limits import MAX_DECODED_BYTES, MAX_FILE_BYTES

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PNG = REPO / "resources" / "samples" / "pediatric_normal.png"
_spec = importlib.util.spec_from_file_location("hostile_probe", REPO / "fuzz" / "hostile_probe.py")
probe = sys.modules.setdefault("hostile_probe", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(probe)

REFUSAL_RSS_MB = 400  # a refusal made from headers: Python, numpy, pydicom and SimpleITK imported, nothing decoded


@dataclass
class Run:
    code: int
    stdout: str
    stderr_lines: list[str]


def radassist(*args: str, timeout: float = 60, drop_file_override: bool = False, env: dict | None = None) -> Run:
    command = [sys.executable, "-m", "radassist.cli", *args]
    if drop_file_override:
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})}, cwd=REPO)
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail(f"radassist {' '.join(args)} still running after {timeout} s")
    return Run(child.returncode, stdout.decode(), stderr.decode().splitlines())


# Forks the CLI from a fresh small interpreter and reports its wait4() figures: a child forked straight from
# pytest would carry pytest's own peak RSS (Linux keeps the high-water mark across exec).
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_of(*args: str) -> tuple[int, float]:
    """(exit code, peak RSS in MB) of one CLI run, from wait4()."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "radassist.cli", *args],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=REPO, timeout=120, check=True)
    code, max_rss_kb = out.stdout.split()
    return int(code), int(max_rss_kb) / 1024.0


def assert_refused(run: Run, *fragments: str) -> None:
    assert run.code == 2, run
    assert len(run.stderr_lines) == 1, run.stderr_lines
    line = run.stderr_lines[0]
    assert line.startswith("radassist: error: "), line
    for fragment in fragments:
        assert fragment in line, line
    assert "Traceback" not in line


# ------------------------------------------------------------------------------ not regular files, at once


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "image.dcm"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", [["info"], ["read"], ["report"], ["segment", "--out", "MASK"]])
def test_a_fifo_is_refused_at_once_by_every_command(fifo: Path, command: list[str]) -> None:
    args = [command[0], str(fifo), *[str(fifo.parent / "m.png") if a == "MASK" else a for a in command[1:]]]
    run = radassist(*args, timeout=30)
    assert_refused(run, "named pipe (FIFO)", "regular files only")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused(device: str) -> None:
    assert_refused(radassist("info", device, timeout=30), "character device")


def test_a_socket_and_a_folder_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.dcm"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        assert_refused(radassist("info", str(path), timeout=30), "a socket")
    finally:
        server.close()
    assert_refused(radassist("info", str(tmp_path), timeout=30), "a folder")


def test_view_refuses_a_fifo_before_opening_a_window(fifo: Path) -> None:
    assert_refused(radassist("view", str(fifo), "--screenshot", str(fifo.parent / "s.png"), timeout=30),
                   "named pipe")


# --------------------------------------------------------------------------------- sizes, before decoding


def test_a_sparse_file_over_the_file_budget_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = probe.sparse_zero_file(tmp_path / "zeros.dcm", MAX_FILE_BYTES + 2**20)
    code, rss = peak_rss_of("info", str(path))
    assert code == 2 and rss < REFUSAL_RSS_MB
    assert_refused(radassist("info", str(path)), "larger than any radiograph")


def test_a_small_all_zero_dcm_is_refused(tmp_path: Path) -> None:
    path = probe.sparse_zero_file(tmp_path / "zeros.dcm", 4 * 2**20)
    assert_refused(radassist("info", str(path), timeout=30), "zero bytes only")


def test_bytes_after_the_end_of_a_deflate_stream_do_not_stall_the_size_check() -> None:
    """pydicom pads a deflated data set to an even length; the padding byte stayed in zlib's unconsumed_tail
    and the size check looped for ever (`radassist info` of a valid deflated DICOM hung)."""
    import io
    import zlib

    from radassist.io.limits import check_inflated_size

    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = deflater.compress(bytes(3 * 2**20)) + deflater.flush() + b"\x00"
    started = time.perf_counter()
    check_inflated_size(io.BytesIO(stream), "padded.dcm")
    assert time.perf_counter() - started < 5


def test_a_valid_deflated_dicom_is_read(tmp_path: Path) -> None:
    path = probe.deflated_dicom(tmp_path / "deflated.dcm", 1024)
    run = radassist("info", str(path), timeout=60)
    assert run.code == 0, run.stderr_lines
    info = json.loads(run.stdout)
    assert (info["rows"], info["columns"]) == (1024, 1024) and info["pixel_max"] > info["pixel_min"]


@pytest.mark.parametrize("build", ["tiff", "nifti", "mha"])
def test_volumes_whose_decode_exceeds_the_budget_are_refused_from_the_header(tmp_path: Path, build: str) -> None:
    """Valid files: every slice fits the pixel limits, but a decoder would allocate all of them at once."""
    if build == "tiff":
        path = probe.tiff_pages(tmp_path / "pages.tif", MAX_DECODED_BYTES // 2048**2 + 8, 2048)
    elif build == "nifti":
        path = probe.nifti_volume(tmp_path / "volume.nii.gz", 1024)  # 1 GiB of uint8
    else:
        path = probe.mha_volume(tmp_path / "volume.mha", (1024, 1024, MAX_DECODED_BYTES // (1024 * 1024 * 4) + 8))
    code, rss = peak_rss_of("info", str(path))
    assert code == 2 and rss < REFUSAL_RSS_MB, (code, rss)
    assert_refused(radassist("info", str(path)), "to decode (limit 512 MB)")


def test_the_volume_builders_make_readable_files_below_the_budget(tmp_path: Path) -> None:
    """The refusals above are about size, not about broken files: the same constructions, small, read fine."""
    for path in (probe.tiff_pages(tmp_path / "p.tif", 3, 256), probe.nifti_volume(tmp_path / "v.nii.gz", 64),
                 probe.mha_volume(tmp_path / "v.mha", (64, 64, 4)), probe.png_rgba16(tmp_path / "c.png", 64)):
        run = radassist("info", str(path), timeout=60)
        assert run.code == 0, (path.name, run.stderr_lines)
        assert json.loads(run.stdout)["frames"] in (1, 3, 4, 64)


def test_a_png_over_the_pixel_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    path = probe.png_rgba16(tmp_path / "rgba16.png", 8100)  # 65.6 M pixels, 525 MB decoded
    code, rss = peak_rss_of("info", str(path))
    assert code == 2 and rss < REFUSAL_RSS_MB, (code, rss)
    assert_refused(radassist("info", str(path)), "8100 x 8100")


def test_a_dicom_frame_over_the_decode_budget_is_refused_before_decoding(tmp_path: Path) -> None:
    """8000 x 8000 is within the pixel limit, but 4 samples of 64 bits would decode to 1.95 GB."""
    import pydicom

    from radassist.errors import InputRefused
    from radassist.io import read_image

    ds = pydicom.dcmread(probe.SAMPLE_DICOM)
    ds.BitsAllocated, ds.SamplesPerPixel, ds.Rows, ds.Columns = 64, 4, 8000, 8000
    ds.save_as(tmp_path / "wide.dcm")
    with pytest.raises(InputRefused, match="1,953 MB to decode"):
        read_image(tmp_path / "wide.dcm")


# ----------------------------------------------------------------------------- malformed but not huge


@pytest.mark.parametrize(("which", "fragment"), [("voi", "VOI LUT of voi.dcm declares 65535 entries but holds 3"),
                                                 ("modality", "Modality LUT of modality.dcm declares 4096")])
def test_a_lut_shorter_than_its_descriptor_is_refused(tmp_path: Path, which: str, fragment: str) -> None:
    path = probe.lut_mismatch_dicom(tmp_path / f"{which}.dcm", which)
    assert_refused(radassist("info", str(path)), fragment)


def test_truncated_jpeg_is_refused_and_info_stdout_stays_clean(tmp_path: Path) -> None:
    intact = probe.jpeg_of(SAMPLE_PNG, tmp_path / "chest.jpg")
    half = probe.truncated_copy(intact, tmp_path / "half.jpg")
    run = radassist("info", str(half))
    assert_refused(run, "truncated or damaged JPEG")
    assert run.stdout == ""
    good = radassist("info", str(intact))
    assert good.code == 0 and good.stderr_lines == []
    assert json.loads(good.stdout)["format"] == "JPEG"  # nothing but the JSON on stdout


def test_truncated_png_is_refused(tmp_path: Path) -> None:
    half = probe.truncated_copy(SAMPLE_PNG, tmp_path / "half.png", 0.7)
    assert_refused(radassist("info", str(half)), "truncated or damaged PNG")


def test_a_harmless_libpng_warning_does_not_refuse_the_image(tmp_path: Path) -> None:
    """The sample carries a grey ICC profile; as RGB, libpng warns 'iCCP: ... not permitted on RGB PNG'."""
    from PIL import Image

    path = tmp_path / "rgb_with_gray_profile.png"
    Image.open(SAMPLE_PNG).convert("RGB").save(path)
    run = radassist("info", str(path))
    assert run.code == 0, run.stderr_lines
    assert "colour image converted to greyscale" in json.loads(run.stdout)["warnings"]


@pytest.mark.parametrize("target", ["/dev/zero", "outside", "fifo"])
def test_a_metaimage_data_file_must_be_a_regular_file_beside_it(tmp_path: Path, target: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    if target == "outside":
        shutil.copy(SAMPLE_PNG, tmp_path / "data.raw")
        data_file = "../data.raw"
    elif target == "fifo":
        os.mkfifo(folder / "data.raw")
        data_file = "data.raw"
    else:
        data_file = target
    header = folder / "image.mhd"
    header.write_text("ObjectType = Image\nNDims = 2\nDimSize = 64 64\nElementType = MET_UCHAR\n"
                      f"ElementDataFile = {data_file}\n", encoding="ascii")
    run = radassist("info", str(header), timeout=30)
    expected = "named pipe" if target == "fifo" else "outside the folder"
    assert_refused(run, expected)


# ------------------------------------------------------------------------------------------- paths


def test_a_missing_path_with_a_newline_gives_one_line(tmp_path: Path) -> None:
    run = radassist("info", str(tmp_path / "no\nsuch.png"), timeout=30)
    assert_refused(run, "no\\nsuch.png does not exist")


def test_a_symlink_loop_is_refused_by_segment(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.symlink_to(b)
    b.symlink_to(a)
    assert_refused(radassist("segment", str(a), "--out", str(tmp_path / "m.png"), timeout=60),
                   "symbolic link loop")


def test_a_file_in_a_mode_000_folder_is_one_line(tmp_path: Path) -> None:
    as_root = os.geteuid() == 0
    if as_root and shutil.which("setpriv") is None:
        pytest.skip("root ignores file permissions and setpriv is not here to drop that")
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(SAMPLE_PNG, locked / "image.png")
    locked.chmod(0)
    try:
        run = radassist("info", str(locked / "image.png"), timeout=30, drop_file_override=as_root)
    finally:
        locked.chmod(0o755)
    assert_refused(run, "permission denied")


# ---------------------------------------------------------------------------- outputs never touch inputs


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_segment_out_onto_a_link_of_the_source_leaves_the_source_intact(tmp_path: Path, link: str) -> None:
    source = tmp_path / "chest.png"
    shutil.copy(SAMPLE_PNG, source)
    out = tmp_path / "mask.png"
    os.link(source, out) if link == "hard" else out.symlink_to(source)
    run = radassist("segment", str(source), "--out", str(out), "--overwrite")
    assert_refused(run, "is an input image")
    assert source.read_bytes() == SAMPLE_PNG.read_bytes()


def test_read_saliency_out_keeps_an_existing_file_unless_overwrite(tmp_path: Path) -> None:
    overlays = tmp_path / "overlays"
    overlays.mkdir()
    existing = overlays / f"{SAMPLE_PNG.stem}_pneumonia.png"
    existing.write_bytes(b"the radiologist's own file")
    run = radassist("read", str(SAMPLE_PNG), "--saliency-out", str(overlays), "--no-report", timeout=120)
    assert_refused(run, "already exists", "--overwrite")
    assert existing.read_bytes() == b"the radiologist's own file"
    assert sorted(p.name for p in overlays.iterdir()) == [existing.name]  # no partial set, no temporary file
    again = radassist("read", str(SAMPLE_PNG), "--saliency-out", str(overlays), "--no-report", "--overwrite",
                      timeout=120)
    assert again.code == 0, again.stderr_lines
    assert existing.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
