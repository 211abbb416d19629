"""Helpers for the PACS tests: a real Orthanc on loopback, a `radassist listen` child process, and copies of a
real chest DICOM from ../shared/data with new UIDs (so a test can store many distinct instances)."""

from __future__ import annotations

import copy
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

CHEST_DICOM = "dicom/nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
TEST_SCU_AET = "RATEST"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chest_copies(source: Path, folder: Path, count: int, *, study_uid: str | None = None) -> list[Path]:
    """`count` copies of a real chest radiograph, each a distinct instance (new SOP Instance UID); one new study
    (or `study_uid`) and series for all of them. The source file is only read."""
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(source)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    paths = []
    for index in range(count):
        ds = copy.deepcopy(template)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = index + 1
        path = folder / f"{index:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@dataclass
class Orthanc:
    http_port: int
    dicom_port: int
    ae_title: str = "ORTHANC"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def get(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, body: bytes | dict):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())


def start_orthanc(workdir: Path, modalities: dict[str, tuple[str, int]]):
    """Orthanc on loopback with a temporary config; returns (Orthanc, Popen). Only the listed modalities
    (AE title -> host, port) may talk to it, and only from their host."""
    binary = shutil.which("Orthanc")
    if binary is None:
        return None, None
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "radassist-test", "StorageDirectory": str(workdir / "storage"), "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "HttpServerEnabled": True,
        "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False, "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowMove": False, "DicomAlwaysAllowGet": False, "DicomCheckModalityHost": True,
        "DicomModalities": {aet.lower(): {"AET": aet, "Host": host, "Port": port, "AllowEcho": True,
                                          "AllowFind": True, "AllowMove": True, "AllowGet": True, "AllowStore": True}
                            for aet, (host, port) in modalities.items()},
        "Plugins": [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.exists() else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "StableAge": 1, "ConcurrentJobs": 2, "SaveJobs": False,
    }
    (workdir / "storage").mkdir(parents=True, exist_ok=True)
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config))
    log = open(workdir / "orthanc.log", "wb")
    process = subprocess.Popen([binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    orthanc = Orthanc(http_port, dicom_port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            orthanc.get("/system")
            return orthanc, process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(workdir / 'orthanc.log').read_text(errors='replace')[-2000:]}") from None
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("Orthanc did not answer on HTTP within 30 s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def start_listener(spool: Path, port: int, *extra: str, preexec_fn=None) -> subprocess.Popen:
    """`radassist listen` in a child process; returns once it answers C-ECHO."""
    command = [sys.executable, "-m", "radassist.cli", "listen", "--port", str(port), "--spool", str(spool), *extra]
    spool.parent.mkdir(parents=True, exist_ok=True)
    log = open(spool.parent / f"listener-{port}.log", "ab")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"listener exited with {process.returncode}")
        if echo("127.0.0.1", port, "RADASSIST"):
            return process
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("listener did not answer C-ECHO within 60 s")


def echo(host: str, port: int, called: str, calling: str = TEST_SCU_AET) -> bool:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 5
    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return getattr(status, "Status", None) == 0


def wait_for(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def png_as_dicom(png: Path, out: Path, *, patient_name: str, patient_id: str, accession: str,
                 study_date: str) -> Path:
    """A real radiograph from a PNG data set as a Secondary Capture DICOM (synthetic patient fields), so tests
    can send images with different findings through DICOM networking."""
    import highdicom as hd
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.uint8)
    ds = hd.sc.SCImage(
        pixel_array=pixels, photometric_interpretation="MONOCHROME2", bits_allocated=8, coordinate_system="PATIENT",
        study_instance_uid=generate_uid(), series_instance_uid=generate_uid(), series_number=1,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="RadAssist test", patient_id=patient_id,
        patient_name=patient_name, patient_orientation=("L", "F"), accession_number=accession, study_id="1",
        referring_physician_name="", patient_birth_date="", patient_sex="", study_date=study_date, study_time="120000",
    )
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.save_as(out, enforce_file_format=True)
    return out
