"""Make a de-identified image a valid DICOM file before the export writes it.

Why: real archives hold legacy and sloppy files (ACR-NEMA files without a File Meta header, dates
written "1995.07.20", Type 2 attributes missing, multi-valued attributes written as one value). The
exported copy must be readable by any DICOM tool and pass a validator (dciodvfy), and the SR and SEG
that reference it copy its patient/study attributes, so each known defect is repaired here, and each
repair is listed in the export's manifest. Pixel data are never changed.
"""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
)

# Type 2 (and 2C that projection images need) attributes of the Patient, General Study, General
# Series, General Equipment and General Image modules: present, possibly empty.
TYPE2_ATTRIBUTES = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "SeriesNumber", "Manufacturer", "InstanceNumber", "PatientOrientation",
)
# Secondary Capture Equipment module: Type 1; "WSD" = workstation (what made the capture is unknown).
SC_CONVERSION_TYPE = "WSD"


def make_conformant(ds: Dataset, derive_uid) -> list[str]:
    """Repair `ds` in place; returns one short line per repair. `derive_uid(text)` makes a stable UID."""
    repairs: list[str] = []
    for keyword in TYPE2_ATTRIBUTES:
        if keyword not in ds:
            setattr(ds, keyword, None)
            repairs.append(f"added empty Type 2 {keyword}")
    if ds.get("SOPClassUID") == SecondaryCaptureImageStorage:
        if "ConversionType" not in ds:
            ds.ConversionType = SC_CONVERSION_TYPE
            repairs.append(f"added ConversionType {SC_CONVERSION_TYPE}")
        if "Laterality" not in ds:
            ds.Laterality = None
            repairs.append("added empty Laterality")
    image_type = ds.get("ImageType")
    if image_type is not None and ds["ImageType"].VM == 1 and " " in str(image_type).strip():
        ds.ImageType = str(image_type).split()
        repairs.append("split ImageType written as one value")
    if "PixelAspectRatio" in ds and ds["PixelAspectRatio"].VM != 2:
        del ds.PixelAspectRatio
        repairs.append("removed malformed PixelAspectRatio")
    if ds.get("SeriesInstanceUID") and ds.get("SeriesInstanceUID") == ds.get("StudyInstanceUID"):
        ds.SeriesInstanceUID = derive_uid("series-of:" + str(ds.StudyInstanceUID))
        repairs.append("gave the series its own UID (it equalled the study's)")
    repairs += _file_meta(ds)
    return repairs


def _file_meta(ds: Dataset) -> list[str]:
    """A File Meta header (ACR-NEMA files have none) describing this dataset as it will be written."""
    meta = getattr(ds, "file_meta", None)
    repairs = []
    if meta is None or "TransferSyntaxUID" not in meta:
        old = meta or FileMetaDataset()
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = old.get("TransferSyntaxUID", ImplicitVRLittleEndian)
        repairs.append("added a File Meta header")
    syntax = meta.TransferSyntaxUID
    if not syntax.is_compressed and syntax != ExplicitVRLittleEndian:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian  # pixels unchanged; only the encoding of the header
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    return repairs
