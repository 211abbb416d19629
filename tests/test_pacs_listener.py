"""The `radassist listen` C-STORE SCP as a real child process: stores from pynetdicom and dcmtk's storescu, the
DIMSE statuses for bad input and a full disk, AE-title allow-list, and 100 stores with a SIGKILL in the middle."""

from __future__ import annotations

import copy
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pydicom
import pynetdicom
import pytest
from pacs_support import (
    CHEST_DICOM,
    TEST_SCU_AET,
    chest_copies,
    echo,
    free_port,
    start_listener,
    stop,
    wait_for,
)
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, SecondaryCaptureImageStorage, Verification

from radassist.pacs.listener import StoreStatus

NON_CHEST_DICOM = "dicom/nhsx_nccid_test_data/sample.dcm"  # an abdomen scout, Secondary Capture


def _worklist(spool: Path) -> dict[str, sqlite3.Row]:
    db = sqlite3.connect(spool / "worklist.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return {row["sop_instance_uid"]: row for row in db.execute("SELECT * FROM instances")}
    finally:
        db.close()


def _associate(port: int, *contexts, calling: str = TEST_SCU_AET):
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for context in contexts:
        ae.add_requested_context(*context) if isinstance(context, tuple) else ae.add_requested_context(context)
    return ae.associate("127.0.0.1", port, ae_title="RADASSIST")


def _store(port: int, dataset_or_path, sop_class=SecondaryCaptureImageStorage,
           syntax: str = pydicom.uid.ImplicitVRLittleEndian) -> int | None:
    assoc = _associate(port, (sop_class, syntax))
    assert assoc.is_established
    try:
        status = assoc.send_c_store(dataset_or_path)
        return getattr(status, "Status", None)
    finally:
        assoc.release()


@pytest.fixture()
def listener(tmp_path):
    port = free_port()
    spool = tmp_path / "spool"
    # results go to a peer that is not there: built and retried in the background, never blocking receiving
    process = start_listener(spool, port, "--allow", TEST_SCU_AET, "STORESCU", "--results-to",
                             f"NOBODY@127.0.0.1:{free_port()}")
    yield port, spool, process
    stop(process)


def test_pynetdicom_and_storescu_stores_are_spooled_and_preread(listener, shared_data, tmp_path):
    port, spool, process = listener
    chest, scout = chest_copies(shared_data / CHEST_DICOM, tmp_path / "src", 2)
    assert _store(port, pydicom.dcmread(chest)) == StoreStatus.SUCCESS
    if shutil.which("storescu"):
        run = subprocess.run(["storescu", "-aet", "STORESCU", "-aec", "RADASSIST", "127.0.0.1", str(port),
                              str(scout)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        stored = [chest, scout]
    else:
        stored = [chest]
    non_chest = shared_data / NON_CHEST_DICOM
    assert _store(port, pydicom.dcmread(non_chest)) == StoreStatus.SUCCESS
    expected = {pydicom.dcmread(p).SOPInstanceUID for p in stored}
    non_chest_uid = pydicom.dcmread(non_chest).SOPInstanceUID

    rows = wait_for(lambda: (r := _worklist(spool)) and all(
        row["ai_status"] != "received" for row in r.values()) and len(r) == len(expected) + 1 and r, timeout=120)
    assert {uid for uid, row in rows.items() if row["ai_status"] == "read"} == expected
    assert rows[non_chest_uid]["ai_status"] == "refused" and rows[non_chest_uid]["ai_reason"]
    for uid in expected:
        assert 0.0 <= rows[uid]["priority"] <= 1.0
        # the spooled file is what was sent, and the source file was not touched
        assert pydicom.dcmread(spool / "instances" / f"{uid}.dcm").SOPInstanceUID == uid
    assert {rows[uid]["calling_ae"] for uid in expected} <= {TEST_SCU_AET, "STORESCU"}
    assert process.poll() is None  # a QA refusal never stops the listener
    assert wait_for(lambda: all(row["results_status"] == "queued" for uid, row in _worklist(spool).items()
                                if uid in expected), timeout=30)
    stop(process)
    log = (spool.parent / f"listener-{port}.log").read_text(errors="replace")
    assert "attempt 1 failed" in log  # the results were made and the sender is retrying
    for ds in (pydicom.dcmread(p) for p in [*stored, non_chest]):  # no patient data in the log
        for value in (str(ds.PatientName), str(ds.PatientID)):
            assert len(value) < 4 or value not in log  # (the scout's ID is "0")


def test_unknown_calling_ae_is_refused(listener):
    port, spool, _ = listener
    assert not echo("127.0.0.1", port, "RADASSIST", calling="INTRUDER")
    assert echo("127.0.0.1", port, "RADASSIST", calling=TEST_SCU_AET)


def test_unsupported_transfer_syntax_and_sop_class_are_refused_at_association(listener):
    port, _, _ = listener
    jpeg_xl = "1.2.840.10008.1.2.4.110"
    assoc = _associate(port, (SecondaryCaptureImageStorage, jpeg_xl), (CTImageStorage,), (Verification,))
    try:
        assert assoc.is_established
        assert [c.abstract_syntax for c in assoc.accepted_contexts] == [Verification]
        assert {c.abstract_syntax for c in assoc.rejected_contexts} == {SecondaryCaptureImageStorage, CTImageStorage}
    finally:
        assoc.release()


def test_bad_datasets_get_the_right_status_and_leave_nothing(listener, shared_data, tmp_path, monkeypatch):
    port, spool, process = listener
    chest = pydicom.dcmread(chest_copies(shared_data / CHEST_DICOM, tmp_path / "src", 1)[0])
    # pynetdicom's documented switch to send a file's bytes as they are (file meta gives the SOP class)
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)

    # a CR data set in a file whose meta says Secondary Capture: sent on the SC context
    wrong_class = copy.deepcopy(chest)
    wrong_class.SOPInstanceUID = wrong_class.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    wrong_class.SOPClassUID = pydicom.uid.UID("1.2.840.10008.5.1.4.1.1.1")
    wrong_class.save_as(tmp_path / "wrong_class.dcm", enforce_file_format=False)
    assert _store(port, tmp_path / "wrong_class.dcm") == StoreStatus.DATASET_DOES_NOT_MATCH_SOP_CLASS

    no_study = copy.deepcopy(chest)
    no_study.SOPInstanceUID = generate_uid()
    del no_study.StudyInstanceUID
    assert _store(port, no_study) == StoreStatus.DATASET_DOES_NOT_MATCH_SOP_CLASS

    # a file whose data set does not decode: a valid file meta, then garbage (sent raw, as a path)
    garbage = tmp_path / "garbage.dcm"
    header = copy.deepcopy(chest)
    header.SOPInstanceUID = header.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    header.save_as(garbage, enforce_file_format=True)
    raw = garbage.read_bytes()
    start = 128 + 4 + 12 + pydicom.dcmread(garbage).file_meta.FileMetaInformationGroupLength  # data set begins
    garbage.write_bytes(raw[:start] + b"\x08\x00\x16\x00\xff\xff\xff\x7f" + os.urandom(64))
    assert _store(port, garbage) == StoreStatus.CANNOT_UNDERSTAND

    assert list((spool / "instances").iterdir()) == [] and list((spool / "incoming").iterdir()) == []
    assert _worklist(spool) == {}
    assert process.poll() is None


def test_full_disk_answers_out_of_resources_and_keeps_what_was_acknowledged(shared_data, tmp_path):
    """The spool's filesystem refuses writes past 1.5 MB (RLIMIT_FSIZE: the kernel's EFBIG, like ENOSPC a
    write error): the first 1 MB instance is stored, a 2 MB one gets 0xA700 and leaves no partial file."""
    port, spool = free_port(), tmp_path / "spool"
    small, big = chest_copies(shared_data / CHEST_DICOM, tmp_path / "src", 2)
    big_ds = pydicom.dcmread(big)
    big_ds.add_new(0x00091010, "LO", "RadAssist test")  # private creator
    big_ds.add_new(0x00091001, "OB", os.urandom(1_000_000))  # makes the file ~2 MB
    big_ds.save_as(big, enforce_file_format=True)

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))

    process = start_listener(spool, port, preexec_fn=limit_file_size)
    try:
        assert _store(port, pydicom.dcmread(small)) == StoreStatus.SUCCESS
        assert _store(port, big_ds) == StoreStatus.OUT_OF_RESOURCES
        assert process.poll() is None
    finally:
        stop(process)
    assert [p.name for p in (spool / "instances").iterdir()] == [f"{pydicom.dcmread(small).SOPInstanceUID}.dcm"]
    assert list((spool / "incoming").iterdir()) == []
    assert pydicom.dcmread(spool / "instances" / f"{pydicom.dcmread(small).SOPInstanceUID}.dcm").pixel_array.shape \
        == (1024, 1024)


@pytest.mark.slow
def test_100_stores_with_the_listener_killed_midway(shared_data, tmp_path, capsys):
    """SIGKILL while stores arrive; restart; the sender re-sends what was not acknowledged. Every acknowledged
    instance is in the spool, whole; nothing is half-written."""
    total = 100
    sources = chest_copies(shared_data / CHEST_DICOM, tmp_path / "src", total)
    datasets = [pydicom.dcmread(p) for p in sources]
    port, spool = free_port(), tmp_path / "spool"
    process = start_listener(spool, port)
    acknowledged: set[str] = set()
    acknowledged_before_kill: set[str] = set()
    failed_attempts = 0
    unacknowledged_tries: set[str] = set()  # sent, no Success seen: the sender must send these again
    killed = threading.Event()

    def kill_midway() -> None:
        wait_for(lambda: len(acknowledged) >= total // 2, timeout=300, interval=0.001)
        time.sleep(random.uniform(0.0, 0.03))  # land inside the next store's transfer or write
        acknowledged_before_kill.update(acknowledged)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        killed.set()

    killer = threading.Thread(target=kill_midway)
    killer.start()
    pending = list(datasets)
    restarted = None
    started = time.monotonic()
    while pending and time.monotonic() - started < 600:
        assoc = _associate(port, (SecondaryCaptureImageStorage, pydicom.uid.ImplicitVRLittleEndian))
        if not assoc.is_established:
            failed_attempts += 1
            if killed.is_set() and restarted is None:
                partial_before_restart = sorted(p.name for p in (spool / "incoming").iterdir())
                restarted = start_listener(spool, port)
            time.sleep(0.1)
            continue
        while pending:
            ds = pending[0]
            status = assoc.send_c_store(ds)
            if getattr(status, "Status", None) != StoreStatus.SUCCESS:
                failed_attempts += 1
                unacknowledged_tries.add(ds.SOPInstanceUID)
                break
            acknowledged.add(ds.SOPInstanceUID)
            pending.pop(0)
        assoc.release() if assoc.is_established else None
    killer.join(60)
    try:
        assert not pending, f"{len(pending)} instances were never acknowledged"
        spooled = {p.stem: p for p in (spool / "instances").glob("*.dcm")}
        by_uid = {ds.SOPInstanceUID: src for ds, src in zip(datasets, sources, strict=True)}
        half_written = 0
        for uid in acknowledged:
            stored = pydicom.dcmread(spooled[uid])
            source = pydicom.dcmread(by_uid[uid])
            if stored.PixelData != source.PixelData or stored.SOPInstanceUID != uid:
                half_written += 1
        worklist = wait_for(lambda: (r := _worklist(spool)) and len(r) == total and r, timeout=30)
        partial_after_restart = sorted(p.name for p in (spool / "incoming").iterdir())
    finally:
        stop(restarted)
    with capsys.disabled():
        print(f"\n100-store kill test: {len(acknowledged_before_kill)} acknowledged before SIGKILL; "
              f"{failed_attempts} failed attempt(s) (store or association) after it; "
              f"{len(unacknowledged_tries)} in flight without Success, re-sent; {len(acknowledged)} acknowledged "
              f"in all; {len(set(spooled) & acknowledged)} of them in the spool, {half_written} half-written; "
              f"partial files at restart: {len(partial_before_restart)} (removed: {len(partial_after_restart) == 0}); "
              f"worklist rows {len(worklist)}")
    assert killed.is_set() and 0 < len(acknowledged_before_kill) < total
    assert acknowledged == {ds.SOPInstanceUID for ds in datasets}
    assert set(spooled) == acknowledged and half_written == 0
    assert partial_after_restart == []
