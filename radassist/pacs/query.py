"""Find and fetch studies on a configured peer: C-FIND / C-MOVE / C-GET, or QIDO-RS / WADO-RS.

`StudyQuery` is what the viewer's PACS form asks for (patient ID or name, a date range, an accession number);
`StudyMatch` is one answer. C-MOVE asks the peer to send the study to an AE it knows (normally the RadAssist
listener, which pre-reads it); C-GET and WADO-RS bring the instances back on the same connection and write them
to the spool, so the viewer can open them directly. Nothing connects unless one of these functions is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from radassist.errors import RadAssistError
from radassist.pacs.config import DicomWebPeer, Peer
from radassist.pacs.spool import Spool

TIMEOUT_S = 30.0


class QueryError(RadAssistError):
    """The peer could not be reached or refused the request."""


@dataclass(frozen=True)
class StudyQuery:
    patient_id: str = ""
    patient_name: str = ""  # DICOM wildcards allowed, e.g. "DOE^*"
    date_from: str = ""  # YYYYMMDD
    date_to: str = ""
    accession_number: str = ""

    def date_range(self) -> str:
        if not (self.date_from or self.date_to):
            return ""
        return self.date_from if self.date_from == self.date_to else f"{self.date_from}-{self.date_to}"


@dataclass(frozen=True)
class StudyMatch:
    study_instance_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    accession_number: str
    description: str
    modalities: str
    instances: int | None


_RETURN_KEYS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber", "StudyDescription",
                "ModalitiesInStudy", "NumberOfStudyRelatedInstances")


def _identifier(query: StudyQuery):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in _RETURN_KEYS:
        setattr(ds, keyword, "")
    ds.PatientID = query.patient_id
    ds.PatientName = query.patient_name
    ds.StudyDate = query.date_range()
    ds.AccessionNumber = query.accession_number
    return ds


def _match(ds) -> StudyMatch:
    from pydicom.multival import MultiValue

    count = ds.get("NumberOfStudyRelatedInstances")
    modalities = ds.get("ModalitiesInStudy", "")
    return StudyMatch(
        study_instance_uid=str(ds.get("StudyInstanceUID", "")), patient_id=str(ds.get("PatientID", "")),
        patient_name=str(ds.get("PatientName", "")), study_date=str(ds.get("StudyDate", "")),
        accession_number=str(ds.get("AccessionNumber", "")), description=str(ds.get("StudyDescription", "")),
        modalities="\\".join(map(str, modalities)) if isinstance(modalities, MultiValue) else str(modalities),
        instances=int(count) if count not in (None, "") else None)


def _associate(peer: Peer, calling_ae_title: str, contexts, *, roles=None, handlers=None):
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    for context in contexts:
        ae.add_requested_context(context)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, ext_neg=roles, evt_handlers=handlers)
    if not assoc.is_established:
        raise QueryError(f"{peer.ae_title} at {peer.host}:{peer.port} did not accept the association")
    return assoc


def find_studies(peer: Peer, query: StudyQuery, calling_ae_title: str) -> list[StudyMatch]:
    """C-FIND (Study Root) for studies matching `query`."""
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FindModel

    assoc = _associate(peer, calling_ae_title, [FindModel])
    matches = []
    try:
        for status, identifier in assoc.send_c_find(_identifier(query), FindModel):
            code = getattr(status, "Status", None)
            if code is None:
                raise QueryError(f"{peer.ae_title} did not answer the query")
            if code in (0xFF00, 0xFF01) and identifier is not None:
                matches.append(_match(identifier))
            elif code != 0x0000:
                raise QueryError(f"{peer.ae_title} refused the query with status 0x{code:04X}")
    finally:
        assoc.release()
    return matches


def move_study(peer: Peer, study_instance_uid: str, destination_ae_title: str, calling_ae_title: str) -> int:
    """C-MOVE a study to `destination_ae_title` (an AE the peer knows, usually this listener); returns how many
    instances the peer reports sent."""
    from pydicom.dataset import Dataset
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MoveModel

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_instance_uid
    assoc = _associate(peer, calling_ae_title, [MoveModel])
    completed, failed = 0, 0
    try:
        for status, _identifier in assoc.send_c_move(ds, destination_ae_title, MoveModel):
            code = getattr(status, "Status", None)
            if code is None:
                raise QueryError(f"{peer.ae_title} did not answer the move request")
            completed = int(status.get("NumberOfCompletedSuboperations", completed) or completed)
            failed = int(status.get("NumberOfFailedSuboperations", failed) or failed)
            if code not in (0x0000, 0xFF00, 0xB000):
                raise QueryError(f"{peer.ae_title} refused the move with status 0x{code:04X}")
    finally:
        assoc.release()
    if failed:
        raise QueryError(f"{peer.ae_title} could not send {failed} instance(s) to {destination_ae_title}")
    return completed


def get_study(peer: Peer, study_instance_uid: str, spool: Spool, calling_ae_title: str) -> list[Path]:
    """C-GET a study's chest radiograph instances straight into the spool; returns their paths."""
    from pydicom.dataset import Dataset
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GetModel

    from radassist.pacs.listener import accepted_sop_classes

    stored: list[Path] = []

    def on_store(event) -> int:
        ds = event.dataset
        stored.append(spool.store(str(ds.SOPInstanceUID), event.encoded_dataset(include_meta=True)))
        return 0x0000

    classes = accepted_sop_classes()
    assoc = _associate(peer, calling_ae_title, [GetModel, *classes],
                       roles=[build_role(uid, scp_role=True) for uid in classes],
                       handlers=[(evt.EVT_C_STORE, on_store)])
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_instance_uid
    try:
        for status, _identifier in assoc.send_c_get(ds, GetModel):
            code = getattr(status, "Status", None)
            if code is None:
                raise QueryError(f"{peer.ae_title} did not answer the get request")
            if code not in (0x0000, 0xFF00, 0xB000):
                raise QueryError(f"{peer.ae_title} refused the get with status 0x{code:04X}")
    finally:
        assoc.release()
    return stored


def qido_studies(server: DicomWebPeer, query: StudyQuery) -> list[StudyMatch]:
    """QIDO-RS search for studies."""
    from dicomweb_client.api import DICOMwebClient
    from pydicom.dataset import Dataset
    from requests import RequestException

    filters = {key: value for key, value in (
        ("PatientID", query.patient_id), ("PatientName", query.patient_name), ("StudyDate", query.date_range()),
        ("AccessionNumber", query.accession_number)) if value}
    try:
        answers = DICOMwebClient(url=server.url).search_for_studies(search_filters=filters, fuzzymatching=False)
    except (RequestException, OSError, ValueError) as exc:
        raise QueryError(f"QIDO-RS on {server.url} failed: {exc}") from None
    return [_match(Dataset.from_json(answer)) for answer in answers]


def wado_study(server: DicomWebPeer, study_instance_uid: str, spool: Spool) -> list[Path]:
    """WADO-RS retrieve a study into the spool; returns the paths written."""
    from dicomweb_client.api import DICOMwebClient
    from requests import RequestException

    try:
        instances = DICOMwebClient(url=server.url).retrieve_study(study_instance_uid)
    except (RequestException, OSError, ValueError) as exc:
        raise QueryError(f"WADO-RS from {server.url} failed: {exc}") from None
    paths = []
    for ds in instances:
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        paths.append(spool.store(str(ds.SOPInstanceUID), buffer.getvalue()))
    return paths
