"""`radassist batch`: collision-free names, sources confined to SRC, DICOM studies, a SIGKILLed worker, a
SIGKILLed driver and --resume, and a SIGKILLed Ray actor on a real local Ray instance. Real images from
../shared/data and tests/data, the real CLI in a subprocess, real worker processes and signals.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from radassist.batch.sources import SourceKind, list_source
from radassist.batch.work_queue import WorkQueue
from radassist.batch.worker import ImageStatus

NIH_DICOM = "dicom/nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"
NIH_STUDY = "1.3.6.1.4.1.11129.5.5.112507010803284478207522016832191866964708"
CR_DICOM = "dicom/dcmfx_test_assets/fo-dicom/CR-MONO1-10-chest.dcm"
CLI = ("import sys; from radassist.cli import main; code = main(sys.argv[1:]); "
       "print('ray imported:', 'ray' in sys.modules); sys.exit(code)")


def batch_command(*args: object) -> list[str]:
    return [sys.executable, "-c", CLI, "batch", *map(str, args)]


def run_batch(*args: object, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(batch_command(*args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def start_batch():
    """Start `radassist batch` in the background; a run the test left running is interrupted (Ctrl+C, so a
    local Ray shuts down), then killed."""
    started: list[subprocess.Popen] = []

    def start(*args: object, **popen) -> subprocess.Popen:
        popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
        started.append(subprocess.Popen(batch_command(*args), **popen))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def summary_rows(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:  # every row is whole: all columns present
        assert None not in row.values() and None not in row, row
    return rows


def result_files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in (out / "results").rglob("*.json")}


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def pediatric(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "pediatric_pneumonia" / "images").glob("*.png"))


def image_tree(root: Path, images: list[Path], folders: int) -> list[str]:
    """Copy images into `folders` sub-folders, each named IM0001.png, IM0002.png, ...: the archive layout
    where base names repeat across folders. Returns the relative paths."""
    relative = []
    for index, image in enumerate(images):
        name = f"f{index % folders}/IM{index // folders + 1:04d}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, root / name)
        relative.append(name)
    return relative


def test_same_named_images_in_different_folders_keep_separate_results(tmp_path, pediatric):
    src, out = tmp_path / "src", tmp_path / "out"
    names = image_tree(src, pediatric[:4], folders=2)
    assert sorted(names) == ["f0/IM0001.png", "f0/IM0002.png", "f1/IM0001.png", "f1/IM0002.png"]
    proc = run_batch(src, "--out", out, "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_no_traceback(proc)
    assert "4 images: 4 read, 0 refused, 0 failed" in proc.stdout
    assert "ray imported: False" in proc.stdout  # Ray is imported only on the ray path
    assert result_files(out) == {f"results/{name}.json" for name in names}
    rows = summary_rows(out)
    assert sorted(row["file"] for row in rows) == sorted(names)
    probabilities = {}
    for row in rows:
        payload = json.loads((out / row["result"]).read_text())
        assert payload["file"] == row["file"] and payload["batch"]["source"] == row["file"]
        probabilities[row["file"]] = tuple(f["probability"] for f in payload["findings"])
    assert len(set(probabilities.values())) == 4  # four different images, four different results


def test_dicom_files_are_grouped_by_study(tmp_path, test_data):
    src, out = tmp_path / "src", tmp_path / "out"
    for folder in ("s1", "s2"):  # the same NIH study in two series folders, same base name, no suffix
        (src / folder).mkdir(parents=True)
        shutil.copy(test_data / NIH_DICOM, src / folder / "IM0001")
    (src / "s3").mkdir()
    shutil.copy(test_data / CR_DICOM, src / "s3" / "IM0001")
    proc = run_batch(src, "--out", out, "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {row["file"]: row for row in summary_rows(out)}
    assert set(rows) == {"s1/IM0001", "s2/IM0001", "s3/IM0001"}
    assert rows["s1/IM0001"]["status"] == rows["s2/IM0001"]["status"] == "read"
    assert rows["s1/IM0001"]["study"] == rows["s2/IM0001"]["study"] == NIH_STUDY
    with open(out / "studies.csv", newline="") as handle:
        studies = {row["study"]: row for row in csv.DictReader(handle)}
    assert studies[NIH_STUDY]["images"] == "2" and studies[NIH_STUDY]["read"] == "2"
    assert sum(int(row["images"]) for row in studies.values()) == 3


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # the hostile Referenced File ID, on purpose
def test_dicomdir_source_reads_its_records_with_their_studies(tmp_path, test_data):
    import pydicom
    from pydicom.fileset import FileSet
    from pydicom.uid import generate_uid

    file_set = FileSet()
    for number in (1, 2, 3):  # three instances of the real NIH radiograph in one study (records need these tags)
        ds = pydicom.dcmread(test_data / NIH_DICOM)
        ds.SOPInstanceUID, ds.file_meta.MediaStorageSOPInstanceUID = (generate_uid(),) * 2
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "20200102", "1015", "1", 1, number
        ds.save_as(tmp_path / f"in{number}.dcm")
        file_set.add(str(tmp_path / f"in{number}.dcm"))
    media = tmp_path / "media"
    file_set.write(media)
    dicomdir = pydicom.dcmread(media / "DICOMDIR")  # the third record now points outside the DICOMDIR's folder
    [record for record in dicomdir.DirectoryRecordSequence if "ReferencedFileID" in record][2].ReferencedFileID = \
        ["..", "in3.dcm"]
    dicomdir.save_as(media / "DICOMDIR")
    listing = list_source(media / "DICOMDIR")
    assert listing.kind is SourceKind.DICOMDIR and len(listing.items) == 2
    assert [entry.relative for entry in listing.refused] == ["../in3.dcm"]
    assert "outside the folder" in listing.refused[0].reason
    assert {item.study_uid for item in listing.items} == {NIH_STUDY}
    out = tmp_path / "out"
    proc = run_batch(media, "--out", out, "--workers", "1")  # a folder holding a DICOMDIR: its records
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = summary_rows(out)
    read = [row for row in rows if row["status"] == "read"]
    assert sorted(row["file"] for row in read) == sorted(item.relative for item in listing.items)
    assert {row["study"] for row in read} == {NIH_STUDY}
    assert [(row["file"], row["status"]) for row in rows if row not in read] == [("../in3.dcm", "refused")]
    with open(out / "studies.csv", newline="") as handle:
        studies = {row["study"]: (row["images"], row["read"], row["refused"]) for row in csv.DictReader(handle)}
    assert studies[NIH_STUDY] == ("2", "2", "0")


def test_list_file_entries_are_confined_to_its_folder(tmp_path, pediatric):
    src, out = tmp_path / "src", tmp_path / "out"
    (src / "a").mkdir(parents=True)
    shutil.copy(pediatric[0], src / "a" / "IM0001.png")
    shutil.copy(pediatric[1], tmp_path / "outside.png")
    (src / "link.png").symlink_to(tmp_path / "outside.png")
    os.mkfifo(src / "pipe.png")
    (src / "list.txt").write_text("\n".join([
        "# images to pre-read", "a/IM0001.png", "../outside.png", str(tmp_path / "outside.png"), "link.png",
        "missing.png", "pipe.png", "a/../a/IM0001.png", ""]))
    proc = run_batch(src / "list.txt", "--out", out, "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {row["file"]: row for row in summary_rows(out)}
    assert rows["a/IM0001.png"]["status"] == "read"
    for entry in ("../outside.png", str(tmp_path / "outside.png"), "link.png"):
        assert rows[entry]["status"] == "refused" and "outside the folder" in rows[entry]["reason"]
    assert "does not exist" in rows["missing.png"]["reason"]
    assert "named pipe" in rows["pipe.png"]["reason"]
    assert "listed twice" in rows["a/../a/IM0001.png"]["reason"]
    assert result_files(out) == {"results/a/IM0001.png.json"}
    assert not list((tmp_path / "out").rglob("outside*"))


def test_folder_walk_skips_the_batch_output_and_refuses_links_that_escape(tmp_path):
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    (src / "x" / "IM0001.png").write_bytes(b"\x89PNG")
    (src / ".hidden.png").write_bytes(b"x")
    (src / "loop.png").symlink_to(src / "loop.png")
    (src / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    (src / "results").mkdir(parents=True)  # --out SRC: the batch's own results are not inputs
    (src / "results" / "old.png").write_bytes(b"x")
    listing = list_source(src, exclude=[src / "results", src / "ray"])
    assert [item.relative for item in listing.items] == ["x/IM0001.png"]
    refused = {entry.relative: entry.reason for entry in listing.refused}
    assert "symbolic link loop" in refused["loop.png"]
    assert "not followed" in refused["dirlink"]
    assert set(refused) == {"loop.png", "dirlink"}


def test_lost_image_goes_back_to_the_queue_until_its_retries_are_spent():
    from radassist.batch.sources import BatchItem

    queue = WorkQueue([BatchItem("/a", "a"), BatchItem("/b", "b")], retries=1)
    first = queue.take()
    assert queue.lost(first, "worker killed") is None  # retried...
    assert queue.take() == first and queue.attempts(first) == 2  # ...first, by the next free worker
    failed = queue.lost(first, "worker killed")
    assert failed.status is ImageStatus.FAILED and "lost with its worker 2 times" in failed.reason
    assert [o.item.relative for o in queue.give_up("no worker left")] == ["b"] and len(queue) == 0


def test_bad_arguments_are_one_line_refusals(tmp_path, pediatric):
    cases = [
        ((tmp_path / "missing", "--out", tmp_path / "o1"), "does not exist"),
        ((tmp_path, "--out", tmp_path / "o2", "--ray-address", "127.0.0.1:1"), "--ray-address needs --engine ray"),
        ((tmp_path, "--out", tmp_path / "o3", "--workers", "0"), "must be at least 1"),
        ((tmp_path, "--out", tmp_path / "o5", "--engine", "ray", "--ray-address", "127.0.0.1:1", "--record"),
         "--record stores sessions in this machine's feedback store"),
    ]
    for args, message in cases:
        proc = run_batch(*args)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("radassist: error: "), proc.stderr
        assert message in proc.stderr
    binary = tmp_path / "binary.lst"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    proc = run_batch(binary, "--out", tmp_path / "o4")
    assert proc.returncode == 2 and "not a folder, a DICOMDIR or a text list" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# --- a lost worker and an interrupted run -------------------------------------------------------------------

def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def descendants(pid: int) -> list[int]:
    result, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            result.append(child)
            todo.append(child)
    return result


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def kill_a_busy_worker(driver: subprocess.Popen, out: Path, is_worker) -> int:
    """Once a first result exists, SIGKILL a worker that is reading (running) an image; returns its pid."""
    wait_for(lambda: result_files(out) or driver.poll() is not None, 600, "a first result")
    assert driver.poll() is None, "the batch ended before a worker could be killed"
    victim = wait_for(lambda: next((pid for pid in descendants(driver.pid)
                                    if is_worker(cmdline(pid)) and state(pid) == "R"), None), 30, "a busy worker")
    os.kill(victim, signal.SIGKILL)
    return victim


def is_local_worker(command: str) -> bool:
    return "spawn_main" in command


@pytest.mark.slow
@pytest.mark.parametrize("retries", [1, 0])
def test_a_killed_worker_loses_no_image(tmp_path, pediatric, retries, start_batch):
    src, out = tmp_path / "src", tmp_path / "out"
    names = image_tree(src, pediatric[:16], folders=4)
    driver = start_batch(src, "--out", out, "--workers", "2", "--retries", retries)
    victim = kill_a_busy_worker(driver, out, is_local_worker)
    stdout, stderr = driver.communicate(timeout=600)
    proc = subprocess.CompletedProcess(driver.args, driver.returncode, stdout, stderr)
    assert_no_traceback(proc)
    rows = summary_rows(out)
    assert sorted(row["file"] for row in rows) == sorted(names)  # every image has exactly one row: none lost
    read = [row for row in rows if row["status"] == "read"]
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(read) + len(failed) == len(names)
    assert result_files(out) == {row["result"] for row in read}  # a result for each read row, none for failed
    lost = f"worker process {victim} killed by SIGKILL while reading an image"
    if lost not in stderr:  # the kill landed between two images (a race the test cannot rule out): nothing lost
        assert f"worker process {victim} killed by SIGKILL between images" in stderr
        assert proc.returncode == 0 and not failed and all(row["attempts"] == "1" for row in read)
    elif retries:
        assert proc.returncode == 0 and not failed  # the image the killed worker held was read by another
        assert any(row["attempts"] == "2" for row in read)
    else:
        assert proc.returncode == 1 and len(failed) == 1 and lost in failed[0]["reason"]
    print(f"\nkill a worker (retries={retries}): {len(names)} images, {len(result_files(out))} results, "
          f"{len(failed)} failed rows, exit code {proc.returncode}; {stdout.strip().splitlines()[0]}")


@pytest.mark.slow
def test_a_killed_driver_leaves_a_valid_summary_and_resume_finishes_the_rest(tmp_path, pediatric, start_batch):
    src, out = tmp_path / "src", tmp_path / "out"
    names = image_tree(src, pediatric[:16], folders=4)
    driver = start_batch(src, "--out", out, "--workers", "2", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(result_files(out)) >= 3 or driver.poll() is not None, 600, "three results")
    workers = [pid for pid in descendants(driver.pid) if is_local_worker(cmdline(pid))]
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    wait_for(lambda: not any(cmdline(pid) for pid in workers), 30, "the workers to exit after their driver")
    partial = summary_rows(out)  # parses, every row whole
    done_before = result_files(out)
    assert 3 <= len(done_before) < len(names), "the driver was not killed mid-run"
    assert {row["result"] for row in partial if row["status"] == "read"} <= done_before
    stamps = {name: (out / name).stat().st_mtime_ns for name in done_before}

    again = run_batch(src, "--out", out, "--workers", "2")  # an earlier run's folder needs --resume/--overwrite
    assert again.returncode == 2 and "holds an earlier batch" in again.stderr

    resumed = run_batch(src, "--out", out, "--workers", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_no_traceback(resumed)
    rows = summary_rows(out)
    assert sorted(row["file"] for row in rows) == sorted(names) and {row["status"] for row in rows} == {"read"}
    kept = [row for row in rows if row["attempts"] == "0"]
    assert {row["result"] for row in kept} == done_before  # every complete result was skipped, not re-read
    assert all((out / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())
    assert result_files(out) == {f"results/{name}.json" for name in names}
    assert f"({len(done_before)} kept from an earlier run)" in resumed.stdout
    print(f"\nresume: {len(names)} images; killed driver left {len(partial)} summary rows and "
          f"{len(done_before)} results; --resume kept {len(kept)}, read {len(names) - len(kept)}; "
          f"{resumed.stdout.strip().splitlines()[0]}")


# --- the Ray engine: a real local Ray instance ([scale] extra) ---------------------------------------------

def listening_addresses(pids: list[int]) -> set[str]:
    """The local addresses of the TCP sockets these processes listen on (from /proc, no tools needed)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                raw = fields[1].split(":")[0]
                addresses.add(str(ipaddress.ip_address(bytes.fromhex(raw)[::-1])) if len(raw) == 8
                              else _ipv6(raw))
    return addresses


def _ipv6(raw: str) -> str:
    words = bytes.fromhex(raw)
    packed = b"".join(words[i:i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.ip_address(packed)
    return str(address.ipv4_mapped or address)


def is_ray_actor(command: str) -> bool:
    return command.startswith("ray::BatchWorker")


@pytest.mark.slow
def test_a_killed_ray_actor_loses_no_image_and_ray_stays_in_the_output_folder(tmp_path, pediatric, start_batch):
    pytest.importorskip("ray", reason="the [scale] extra (ray) is not installed")
    src, out = tmp_path / "src", tmp_path / "out"
    names = image_tree(src, pediatric[16:28], folders=3)
    driver = start_batch(src, "--out", out, "--workers", "2", "--engine", "ray")
    victim = kill_a_busy_worker(driver, out, is_ray_actor)
    ray_processes = descendants(driver.pid)
    assert listening_addresses(ray_processes) <= {"127.0.0.1"}  # a private Ray: nothing on the network
    stdout, stderr = driver.communicate(timeout=600)
    proc = subprocess.CompletedProcess(driver.args, driver.returncode, stdout, stderr)
    assert proc.returncode == 0, stderr[-3000:]
    assert_no_traceback(proc)
    assert not cmdline(victim)
    rows = summary_rows(out)
    assert sorted(row["file"] for row in rows) == sorted(names)  # one row an image: none lost
    assert {row["status"] for row in rows} == {"read"}  # what the killed actor held was read elsewhere
    assert any(int(row["attempts"]) >= 2 for row in rows)
    assert result_files(out) == {f"results/{name}.json" for name in names}
    assert "worker(s) lost: Ray actor lost" in stderr
    assert stdout.startswith(f"{len(names)} images: {len(names)} read") and "ray imported: True" in stdout
    sessions = list((out / "ray").glob("session_2*"))
    assert len(sessions) == 1 and (sessions[0] / "logs").is_dir()
    assert (out / "ray" / "session_latest").resolve() == sessions[0].resolve()
    print(f"\nkill a Ray actor: {len(names)} images, {len(result_files(out))} results, "
          f"{sum(r['status'] == 'failed' for r in rows)} failed rows, exit code {proc.returncode}; "
          f"{stdout.strip().splitlines()[0]}")
