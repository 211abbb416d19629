"""DICOM objects the export writes beside each de-identified image, made with highdicom:

- a Comprehensive 3D SR following TID 1500 (Measurement Report): per finding, the model's output
  (probability and call, with the model as algorithm and device observer) and the radiologist's
  final call, plus each drawn region as an image region; all reference the source image;
- a Segmentation (SEG) with one segment per drawn region, referencing the source image;
- a Secondary Capture image for sources that were not DICOM (PNG, JPEG, ...), so that the SR and SEG
  have an image to reference.

Why one module: these objects share codes, UIDs and the observer/device description, and they must
reference each other consistently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import highdicom as hd
import numpy as np
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from radassist import __version__
from radassist.feedback.regions import sr_graphic
from radassist.feedback.state import SessionState

MANUFACTURER = "RadAssist"
LOCAL_SCHEME = "99RADASSIST"  # private coding scheme (PS3.16 8.2: designators starting "99")

# Findings with a well-known SNOMED CT concept; any other label gets a local code.
FINDING_CODES: dict[str, tuple[str, str, str]] = {
    "pneumonia": ("233604007", "SCT", "Pneumonia"),
    "covid19": ("840539006", "SCT", "COVID-19"),
    "pleural_effusion": ("60046008", "SCT", "Pleural effusion"),
    "effusion": ("60046008", "SCT", "Pleural effusion"),
    "pneumothorax": ("36118008", "SCT", "Pneumothorax"),
}
CALL_CODES = {
    "present": CodedConcept("52101004", "SCT", "Present"),
    "absent": CodedConcept("2667000", "SCT", "Absent"),
    "uncertain": CodedConcept("373068000", "SCT", "Undetermined"),
}
PROCEDURE = CodedConcept("399208008", "SCT", "Plain X-ray of chest")
PROBABILITY = CodedConcept("probability", LOCAL_SCHEME, "AI calibrated probability")
AI_CALL = CodedConcept("ai-call", LOCAL_SCHEME, "AI call at operating threshold")
NO_UNITS = CodedConcept("1", "UCUM", "no units")
MORPHOLOGICALLY_ALTERED = CodedConcept("49755003", "SCT", "Morphologically Altered Structure")


def finding_code(label: str, display_name: str | None = None) -> CodedConcept:
    if label in FINDING_CODES:
        return CodedConcept(*FINDING_CODES[label])
    return CodedConcept(label[:16], LOCAL_SCHEME, (display_name or label)[:64])


# name -> a stable UID for it within one session, so that a re-export writes the same objects.
UidMaker = Callable[[str], str]


def _code_of(state: SessionState, label: str) -> CodedConcept:
    finding = state.findings.get(label)
    return finding_code(label, finding.display_name if finding else None)


def secondary_capture(pixels_8bit: np.ndarray, *, patient_pseudonym: str, study_uid: str, series_uid: str,
                      instance_uid: str) -> hd.sc.SCImage:
    """A DICOM image for a raster source: 8-bit MONOCHROME2, identified only by the pseudonym."""
    return hd.sc.SCImage(
        pixel_array=np.ascontiguousarray(pixels_8bit, dtype=np.uint8),
        photometric_interpretation="MONOCHROME2", bits_allocated=8, coordinate_system="PATIENT",
        study_instance_uid=study_uid, series_instance_uid=series_uid, series_number=1,
        sop_instance_uid=instance_uid, instance_number=1, manufacturer=MANUFACTURER,
        patient_id=patient_pseudonym, patient_name=f"{patient_pseudonym}^", patient_orientation=("L", "F"),
        accession_number="", study_id="", referring_physician_name="", patient_birth_date="", patient_sex="",
        study_date=None, study_time=None,
    )


def segmentation(image: Dataset, state: SessionState, masks: dict[str, np.ndarray], uid: UidMaker
                 ) -> hd.seg.Segmentation | None:
    """One binary segment per drawn region that covers at least one pixel; None when there is none."""
    kept = [(region_id, mask) for region_id, mask in masks.items() if mask.any()]
    if not kept:
        return None
    descriptions = []
    for number, (region_id, _) in enumerate(kept, start=1):
        region = state.regions[region_id]
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=f"{region.label} {region_id}"[:64],
            segmented_property_category=MORPHOLOGICALLY_ALTERED,
            segmented_property_type=_code_of(state, region.label),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            tracking_uid=uid(f"region:{region_id}"), tracking_id=f"region {region_id}",
        ))
    stack = np.stack([mask for _, mask in kept], axis=-1)[np.newaxis].astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=[image], pixel_array=stack, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=uid("seg-series"), series_number=900,
        sop_instance_uid=uid("seg"), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name="RadAssist feedback export", software_versions=__version__,
        device_serial_number="none", content_label="REGIONS", content_description="Regions drawn by the reader",
    )
    seg.PatientOrientation = image.get("PatientOrientation") or None  # General Image, Type 2C
    _identify_local_codes(seg)
    return seg


def measurement_report(image: Dataset, state: SessionState, *, reader_pseudonym: str | None, device_uid: str,
                       uid: UidMaker, finding_sites: Mapping[str, hd.sr.FindingSite] | None = None
                       ) -> hd.sr.Comprehensive3DSR:
    """TID 1500 report: the AI's and the radiologist's call per finding, and the drawn regions.

    `reader_pseudonym` None: no person observer (an AI pre-read nobody has reviewed yet). `finding_sites`:
    label -> where the model located that finding, added to the AI's measurement group."""
    person = None if reader_pseudonym is None else hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=f"{reader_pseudonym}^"))
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid, name=(state.model_id or "unknown model")[:64], manufacturer_name=MANUFACTURER,
            model_name=(state.model_id or "unknown model")[:64], serial_number=state.model_sha256[:16] or None))
    context = hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device)
    source = [hd.sr.SourceImageForMeasurementGroup.from_source_image(image)]
    algorithm = hd.sr.AlgorithmIdentification(name=(state.model_id or "unknown model")[:64],
                                              version=(state.model_sha256[:16] or "unknown"))
    groups: list = []
    for finding in state.findings.values():
        code = _code_of(state, finding.label)
        if finding.ai_probability is not None:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=uid(f"ai:{finding.label}"), identifier=f"AI {finding.label}"[:64]),
                finding_type=code, algorithm_id=algorithm, source_images=source,
                finding_sites=[finding_sites[finding.label]] if finding.label in (finding_sites or {}) else None,
                measurements=[hd.sr.Measurement(name=PROBABILITY, value=float(finding.ai_probability),
                                                unit=NO_UNITS, algorithm_id=algorithm)],
                qualitative_evaluations=[hd.sr.QualitativeEvaluation(
                    name=AI_CALL, value=CALL_CODES["present" if finding.ai_positive else "absent"])],
            ))
        if finding.decision is not None:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=uid(f"reader:{finding.label}"), identifier=f"Reader {finding.label}"[:64]),
                finding_type=code, source_images=source,
                qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=code, value=CALL_CODES[finding.decision])],
            ))
    rows, columns = int(image.Rows), int(image.Columns)
    for region in state.regions.values():
        graphic_type, graphic_data = sr_graphic(region.geometry, rows, columns)
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=uid(f"region:{region.region_id}"),
                                                         identifier=f"Region {region.region_id}"),
            referenced_region=hd.sr.ImageRegion(
                graphic_type=graphic_type, graphic_data=graphic_data,
                source_image=hd.sr.SourceImageForRegion.from_source_image(image)),
            finding_type=_code_of(state, region.label),
            qualitative_evaluations=[hd.sr.QualitativeEvaluation(
                name=_code_of(state, region.label), value=CALL_CODES["present"])],
        ))
    try:
        report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=PROCEDURE,
                                         imaging_measurements=groups, referenced_images=[image])
    except AttributeError:
        # highdicom's Image Library entry needs ImagerPixelSpacing for CR/DX; without it the image is
        # still referenced by every measurement group and in the evidence sequence.
        report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=PROCEDURE,
                                         imaging_measurements=groups)
    document = hd.sr.Comprehensive3DSR(
        evidence=[image], content=report, series_instance_uid=uid("sr-series"), series_number=901,
        sop_instance_uid=uid("sr"), instance_number=1, manufacturer=MANUFACTURER,
        is_complete=True, is_final=state.signed, is_verified=False,
    )
    _identify_local_codes(document)
    return document


def _identify_local_codes(ds: Dataset) -> None:
    """Declare the private coding scheme (PS3.3 C.12.1.1.2.1) so readers know where the codes come from."""
    item = Dataset()
    item.CodingSchemeDesignator = LOCAL_SCHEME
    item.CodingSchemeName = "RadAssist local finding codes"
    item.CodingSchemeResponsibleOrganization = "RadAssist project"
    ds.CodingSchemeIdentificationSequence = [item]
