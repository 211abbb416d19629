"""Results back to PACS: C-STORE to a peer or STOW-RS to a DICOMweb server, retried with backoff.

`ResultsSender` is a background thread fed with outbox folders (one per received instance, written by the
pre-reader). It never blocks receiving: the listener only puts a folder on its queue. A folder is deleted once
every object in it was accepted; after the last retry it stays on disk (and the worklist says `failed`), and
the next start of the listener sends it again.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from radassist.errors import RadAssistError
from radassist.pacs.background import QueueWorker
from radassist.pacs.config import DicomWebPeer, Peer, ResultsDestination
from radassist.pacs.worklist import ResultsStatus, Worklist

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # waits between attempts; len + 1 attempts in all
DIMSE_TIMEOUT_S = 30.0


class SendError(RadAssistError):
    """A peer refused or could not be reached."""


def store_to_peer(peer: Peer, paths: Sequence[Path], calling_ae_title: str) -> None:
    """C-STORE each file to `peer` on one association; SendError unless every one answered Success."""
    from pydicom import dcmread
    from pynetdicom import AE

    datasets = [dcmread(path) for path in paths]
    ae = AE(ae_title=calling_ae_title)
    ae.dimse_timeout = ae.acse_timeout = ae.network_timeout = DIMSE_TIMEOUT_S
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        raise SendError(f"{peer.ae_title} at {peer.host}:{peer.port} did not accept the association")
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            if code is None:
                raise SendError(f"{peer.ae_title} did not answer a C-STORE (timeout or aborted)")
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):  # success or warning: the peer keeps it
                raise SendError(f"{peer.ae_title} refused a C-STORE with status 0x{code:04X}")
    finally:
        assoc.release()


def store_to_dicomweb(server: DicomWebPeer, paths: Sequence[Path]) -> None:
    """STOW-RS the files to `server`; SendError on any HTTP or DICOM-level failure."""
    from dicomweb_client.api import DICOMwebClient
    from pydicom import dcmread
    from requests import RequestException

    client = DICOMwebClient(url=server.url)
    try:
        response = client.store_instances([dcmread(path) for path in paths])
    except (RequestException, OSError, ValueError) as exc:
        raise SendError(f"STOW-RS to {server.url} failed: {exc}") from None
    if response is not None and response.get("FailedSOPSequence"):
        raise SendError(f"STOW-RS to {server.url}: {len(response.FailedSOPSequence)} object(s) refused")


def send(destination: ResultsDestination, paths: Sequence[Path], calling_ae_title: str) -> None:
    if destination.peer is not None:
        store_to_peer(destination.peer, paths, calling_ae_title)
    if destination.dicomweb is not None:
        store_to_dicomweb(destination.dicomweb, paths)


class ResultsSender(QueueWorker[Path]):
    """Sends outbox folders in the background, one at a time, with backoff between failed attempts."""

    def __init__(self, destination: ResultsDestination, worklist: Worklist, calling_ae_title: str,
                 delays: Sequence[float] = RETRY_DELAYS_S):
        super().__init__("radassist-results-sender")
        self.destination = destination
        self.worklist = worklist
        self.calling_ae_title = calling_ae_title
        self.delays = tuple(delays)

    def submit(self, outbox: Path) -> None:
        self.worklist.set_results(outbox.name, ResultsStatus.QUEUED)
        super().submit(outbox)

    def handle(self, outbox: Path) -> None:
        paths = sorted(outbox.glob("*.dcm"))
        error = ""
        for attempt in range(1, len(self.delays) + 2):
            try:
                send(self.destination, paths, self.calling_ae_title)
            except (SendError, OSError, ValueError, RuntimeError) as exc:
                error = str(exc)
                log.warning("results: attempt %d failed: %s", attempt, error)
                if attempt > len(self.delays) or self.stopping.wait(self.delays[attempt - 1]):
                    break
                continue
            shutil.rmtree(outbox, ignore_errors=True)
            self.worklist.set_results(outbox.name, ResultsStatus.SENT, attempts=attempt)
            log.info("results: %d object(s) sent after %d attempt(s)", len(paths), attempt)
            return
        self.worklist.set_results(outbox.name, ResultsStatus.FAILED, attempts=attempt, error=error)
