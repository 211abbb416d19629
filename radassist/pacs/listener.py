"""The C-STORE / C-ECHO SCP: receive chest radiographs, spool them, pre-read them, queue the results.

Order for each C-STORE, and why "acknowledged" means "kept": the dataset is decoded and checked, written to
the spool atomically (fsynced), recorded in the worklist (synchronous SQLite commit), and only then is
Success returned. A listener killed at any point before that leaves no half-written file (only a `.part` in
the spool's incoming/ folder, removed at the next start) and the sender sees no Success, so it re-sends.

DIMSE statuses answered (PS3.4 B.2.3): 0xA700 out of resources (the spool could not be written, e.g. the disk
is full), 0xA900 data set does not match the SOP class (wrong class, or missing/invalid UIDs), 0xC000 cannot
understand (the data set does not decode). Transfer syntaxes RadAssist cannot decode and SOP classes that are
not chest radiograph images are refused at association time (presentation context rejected), so the sender
knows before it sends pixels. With an allow-list, other calling AE titles are refused at association.

The pre-read runs on one background thread (`PreReader`): `read_radiograph` with QA enforcement off, so a
refusal is recorded in the worklist, never raised; an unexpected error is recorded as `failed`. The results
(SR, overlay capture, presentation state) go to the outbox and the `ResultsSender` thread.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from enum import IntEnum
from io import BytesIO
from pathlib import Path

from radassist.pacs.background import QueueWorker
from radassist.pacs.config import PacsConfig
from radassist.pacs.sender import ResultsSender
from radassist.pacs.spool import Spool, atomic_write
from radassist.pacs.worklist import AIStatus, Worklist, ai_priority

log = logging.getLogger(__name__)

WORKLIST_FILE = "worklist.sqlite"


class StoreStatus(IntEnum):
    SUCCESS = 0x0000
    OUT_OF_RESOURCES = 0xA700
    DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000


def accepted_sop_classes() -> list[str]:
    """Chest radiograph storage SOP classes: CR, DX (for presentation and for processing), secondary capture."""
    from pynetdicom import sop_class

    return [sop_class.ComputedRadiographyImageStorage, sop_class.DigitalXRayImageStorageForPresentation,
            sop_class.DigitalXRayImageStorageForProcessing, sop_class.SecondaryCaptureImageStorage]


def decodable_transfer_syntaxes() -> list[str]:
    """Every transfer syntax this installation's pydicom plugins can decode (uncompressed always)."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import AllTransferSyntaxes

    from radassist.io.dicom import UNSUPPORTED_SYNTAX_NAMES

    syntaxes = []
    for uid in AllTransferSyntaxes:
        if uid in UNSUPPORTED_SYNTAX_NAMES:
            continue
        try:
            if get_decoder(uid).is_available:
                syntaxes.append(uid)
        except NotImplementedError:
            continue
    return syntaxes


@dataclass(frozen=True)
class Received:
    sop_instance_uid: str
    path: Path


class PreReader(QueueWorker[Received]):
    """One background thread that pre-reads spooled instances in arrival order."""

    def __init__(self, spool: Spool, worklist: Worklist, sender: ResultsSender | None, overlay: bool):
        super().__init__("radassist-preread")
        self.spool, self.worklist, self.sender = spool, worklist, sender
        self.overlay = overlay

    def handle_error(self, item: Received, exc: Exception) -> None:  # recorded, never fatal
        log.exception("pre-read failed unexpectedly")
        self.worklist.set_read(item.sop_instance_uid, status=AIStatus.FAILED, reason=f"{type(exc).__name__}: {exc}"[:500])

    def handle(self, item: Received) -> None:
        from pydicom import dcmread

        from radassist.errors import RadAssistError
        from radassist.io import read_image
        from radassist.pipeline.read import ReadOptions, read_radiograph

        try:
            image = read_image(item.path)
            result = read_radiograph(image, ReadOptions(enforce_qa=False, radiomics=False, report=False))
        except RadAssistError as exc:
            self.worklist.set_read(item.sop_instance_uid, status=AIStatus.REFUSED, reason=str(exc))
            return
        if not result.qa.accepted:
            self.worklist.set_read(item.sop_instance_uid, status=AIStatus.REFUSED, reason=result.qa.reason,
                                   model_id=result.model_id)
            return
        priority = ai_priority(result.findings)
        if self.sender is not None:
            self._write_results(item, dcmread(item.path), image, result, priority)
        self.worklist.set_read(item.sop_instance_uid, status=AIStatus.READ, priority=priority,
                               model_id=result.model_id)
        if self.sender is not None:
            self.sender.submit(self.spool.outbox(item.sop_instance_uid))

    def _write_results(self, item: Received, original, image, result, priority) -> None:
        from radassist.imaging.windowing import apply_window
        from radassist.pacs.results import clinical_sr, overlay_capture, presentation_state

        outbox = self.spool.outbox(item.sop_instance_uid)
        objects = {"sr": clinical_sr(original, result)}
        if self.overlay and priority is not None:
            window = image.default_window()
            gray = apply_window(image.pixels, window.center, window.width)
            objects["overlay"] = overlay_capture(original, gray, result.saliency[priority.label],
                                                 result.finding(priority.label), result)
            if (state := presentation_state(original, result)) is not None:
                objects["gsps"] = state
        for name, dataset in objects.items():
            buffer = BytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
            atomic_write(outbox / f"{name}.dcm", buffer.getvalue())


class Listener:
    """The SCP with its spool, worklist, pre-reader and results sender. `start()` returns once it listens."""

    def __init__(self, config: PacsConfig, *, preread: bool = True):
        self.config = config
        self.spool = Spool(config.spool_dir())
        self.worklist = Worklist(self.spool.root / WORKLIST_FILE)
        self.sender = (ResultsSender(config.results, self.worklist, config.ae_title)
                       if config.results.enabled else None)
        self.prereader = PreReader(self.spool, self.worklist, self.sender, config.results.overlay) \
            if preread else None
        self._server = None
        self.received = 0
        self.refused = 0

    # -- life cycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification

        self._recover()
        ae = AE(ae_title=self.config.ae_title)
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 60
        if self.config.allow:
            ae.require_calling_aet = list(self.config.allow)
        syntaxes = decodable_transfer_syntaxes()
        for sop_class_uid in accepted_sop_classes():
            ae.add_supported_context(sop_class_uid, syntaxes)
        ae.add_supported_context(Verification)
        handlers = [(evt.EVT_C_STORE, self._handle_store), (evt.EVT_C_ECHO, lambda _event: 0x0000)]
        self._server = ae.start_server((self.config.bind, self.config.port), block=False, evt_handlers=handlers)
        log.info("listening as %s on %s:%d", self.config.ae_title, self.config.bind, self.config.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self.prereader is not None:
            self.prereader.stop()
        if self.sender is not None:
            self.sender.stop()

    def _recover(self) -> None:
        """After a crash: drop unacknowledged partial files, register spooled files the worklist missed,
        pre-read what was not read yet and send what was not sent yet."""
        from pydicom import dcmread
        from pydicom.errors import InvalidDicomError

        removed = self.spool.discard_partial()
        if removed:
            log.info("removed %d unacknowledged partial file(s)", removed)
        known = self.worklist.known()
        for path in self.spool.files():
            if path.stem in known:
                continue
            try:
                ds = dcmread(path, stop_before_pixels=True)
                self.worklist.add_received(
                    sop_instance_uid=str(ds.SOPInstanceUID), study_instance_uid=str(ds.StudyInstanceUID),
                    series_instance_uid=str(ds.SeriesInstanceUID), sop_class_uid=str(ds.SOPClassUID),
                    calling_ae="", spool_path=path)
            except (InvalidDicomError, AttributeError, OSError, ValueError):
                log.warning("a spooled file could not be registered; left in place")
        if self.prereader is not None:
            self.prereader.start()
            for entry in self.worklist.pending():
                self.prereader.submit(Received(entry.sop_instance_uid, Path(entry.spool_path)))
        if self.sender is not None:
            self.sender.start()
            for outbox in self.spool.outboxes():
                self.sender.submit(outbox)

    # -- DIMSE ----------------------------------------------------------------------------------------
    def _handle_store(self, event) -> int:
        status = self._store(event)
        if status is StoreStatus.SUCCESS:
            self.received += 1
        else:
            self.refused += 1
            log.warning("C-STORE from %s refused: %s (0x%04X)", event.assoc.requestor.ae_title, status.name,
                        status.value)
        return int(status)

    def _store(self, event) -> StoreStatus:
        from pydicom.uid import UID

        try:
            ds = event.dataset
            sop_class_uid, sop_instance_uid = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
            study_uid, series_uid = ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID")
        except Exception:  # pydicom raises many kinds on a malformed stream
            return StoreStatus.CANNOT_UNDERSTAND
        if sop_class_uid is None or sop_instance_uid is None:  # every storage data set opens with these two
            return StoreStatus.CANNOT_UNDERSTAND
        if study_uid is None or series_uid is None:
            return StoreStatus.DATASET_DOES_NOT_MATCH_SOP_CLASS  # a required UID is missing
        sop_class_uid, sop_instance_uid, study_uid, series_uid = map(
            str, (sop_class_uid, sop_instance_uid, study_uid, series_uid))
        if sop_class_uid != event.context.abstract_syntax or not all(
                UID(uid).is_valid for uid in (sop_instance_uid, study_uid, series_uid)):
            return StoreStatus.DATASET_DOES_NOT_MATCH_SOP_CLASS
        try:
            path = self.spool.store(sop_instance_uid, event.encoded_dataset(include_meta=True))
            self.worklist.add_received(
                sop_instance_uid=sop_instance_uid, study_instance_uid=study_uid, series_instance_uid=series_uid,
                sop_class_uid=sop_class_uid, calling_ae=event.assoc.requestor.ae_title, spool_path=path)
        except ValueError:
            return StoreStatus.DATASET_DOES_NOT_MATCH_SOP_CLASS
        except (OSError, sqlite3.Error) as exc:  # disk full, quota, permissions: the sender keeps its copy
            log.error("spool write failed: %s", type(exc).__name__)
            return StoreStatus.OUT_OF_RESOURCES
        if self.prereader is not None:
            self.prereader.submit(Received(sop_instance_uid, path))
        return StoreStatus.SUCCESS
