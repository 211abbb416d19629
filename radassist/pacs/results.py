"""The DICOM objects a pre-read (or a signed reading) sends back to PACS, filed under the ORIGINAL study.

- `clinical_sr`: a Comprehensive 3D SR following TID 1500, built by the same `measurement_report` the
  feedback export uses, but referencing the original image (same Study Instance UID, the patient and study
  modules copied from it by highdicom): the model is the device observer, each finding carries its calibrated
  probability, the call at the operating threshold and, where the saliency peak lies in a lung, a finding
  site (lung zone + laterality, SNOMED CT). A signed reading adds the radiologist as person observer.
- `overlay_capture`: a Secondary Capture of the radiograph with the saliency of the priority finding blended
  in and "AI — research use" burned into the pixels and written in its Series Description.

UIDs are derived from the source SOP Instance UID, the model's sha256 and the object's name, so re-sending
after a crash or a retry files the same objects again instead of duplicates.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from radassist.results import Finding, ReadResult

RESEARCH_LABEL = "AI — research use"
OVERLAY_SERIES_NUMBER = 902
PRESENTATION_SERIES_NUMBER = 903
CAPTURE_MAX_SIDE = 2048  # px: the overlay capture is shrunk to this longest side (a picture, not a measurement)


# Patient and General Study module attributes of Type 2 (present, may be empty) that highdicom copies from
# the source; real files often omit them, so the copy used as reference gets them empty.
_TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                 "ReferringPhysicianName", "StudyID", "AccessionNumber")


def long_string(text: str) -> str:
    """`text` cut to fit a LO value: 64 bytes in UTF-8 (ISO_IR 192), which "—" alone takes 3 of."""
    return text.encode("utf-8")[:64].decode("utf-8", errors="ignore")


def reference_header(original: Dataset) -> Dataset:
    """A copy of the source header (no pixels) that highdicom can take the patient and study from; the
    source itself is never changed."""
    header = Dataset()
    for element in original:
        if element.tag.group != 0x7FE0:
            header.add(element)
    header = header.copy()
    header.file_meta = original.get("file_meta", Dataset())
    for element in list(header):
        if not _valid(element):  # e.g. Patient's Age "81" (AS needs "081Y"): the copy must not inherit it
            del header[element.tag]
    for keyword in _TYPE2_COPIED:
        if keyword not in header:
            setattr(header, keyword, "")
    return header


def _valid(element) -> bool:
    from pydicom import config
    from pydicom.valuerep import validate_value

    if element.VR == "SQ":
        return True
    try:
        validate_value(element.VR, element.value, config.RAISE)
    except (ValueError, TypeError):
        return False
    return True


def uid_maker(source_sop_instance_uid: str, model_sha256: str, purpose: str = "preread"):
    def uid(name: str) -> str:
        return generate_uid(entropy_srcs=[source_sop_instance_uid, model_sha256, purpose, name])

    return uid


def _quiet_about_names(build):
    """highdicom warns about an unusual patient name by quoting it; in the listener's log that would be PHI. The
    name is the patient's as PACS has it (clinical output keeps it unchanged), so the warning is dropped."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
            return build(*args, **kwargs)

    return wrapper


def _finding_site(zone: str | None):
    """'left lower zone' -> FindingSite(lung zone, laterality) in SNOMED CT; None for anything else."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from radassist.imaging.lungs import ZONE_NAMES

    parts = (zone or "").split()
    if len(parts) != 3 or parts[0] not in ("left", "right") or parts[1] not in ZONE_NAMES or parts[2] != "zone":
        return None
    location = {"upper": codes.SCT.UpperZoneOfLung, "middle": codes.SCT.MiddleZoneOfLung,
                "lower": codes.SCT.LowerZoneOfLung}[parts[1]]
    laterality = codes.SCT.Left if parts[0] == "left" else codes.SCT.Right
    return hd.sr.FindingSite(anatomic_location=location, laterality=laterality)


def _preread_state(result: ReadResult):
    from radassist.feedback.state import FindingState, SessionState

    state = SessionState(session_id="preread", model_id=result.model_id, model_sha256=result.model_sha256)
    for finding in result.findings:
        state.findings[finding.label] = FindingState(
            label=finding.label, display_name=finding.display_name, ai_probability=finding.probability,
            ai_threshold=finding.threshold, ai_positive=finding.positive)
    return state


@_quiet_about_names
def clinical_sr(original: Dataset, result: ReadResult) -> Dataset:
    """The AI pre-read as a TID 1500 SR in the original study (preliminary: nobody has signed it)."""
    from radassist.feedback.dicom_outputs import measurement_report

    sites = {f.label: site for f in result.findings if f.positive and (site := _finding_site(f.zone))}
    uid = uid_maker(original.SOPInstanceUID, result.model_sha256)
    return _describe(measurement_report(reference_header(original), _preread_state(result), reader_pseudonym=None, uid=uid,
                                        device_uid=uid("device"), finding_sites=sites), "AI pre-read")


@_quiet_about_names
def signed_reading_sr(original: Dataset, state, reader_name: str) -> Dataset:
    """The radiologist's signed reading (a replayed feedback `SessionState`) as a final TID 1500 SR."""
    from radassist.feedback.dicom_outputs import measurement_report

    uid = uid_maker(original.SOPInstanceUID, state.model_sha256, f"reading:{state.session_id}")
    return _describe(measurement_report(reference_header(original), state, reader_pseudonym=reader_name, uid=uid,
                                        device_uid=uid("device")), "Reading with AI assistance")


def _describe(document: Dataset, what: str) -> Dataset:
    document.SpecificCharacterSet = "ISO_IR 192"
    document.SeriesDescription = long_string(f"{what} ({RESEARCH_LABEL})")
    return document


@_quiet_about_names
def overlay_capture(original: Dataset, gray01: np.ndarray, saliency01: np.ndarray, finding: Finding,
                    result: ReadResult) -> Dataset:
    """A Secondary Capture (RGB) of the radiograph with `finding`'s saliency blended in, labelled in pixels
    and header as research use, in a new series of the original study."""
    import highdicom as hd
    from PIL import Image

    from radassist.explain.overlay import blend_overlay

    rgb = blend_overlay(gray01, saliency01)
    scale = CAPTURE_MAX_SIDE / max(rgb.shape[:2])
    if scale < 1:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    caption = f"{RESEARCH_LABEL.replace('—', '-')} - {finding.display_name} p={finding.probability:.2f} ({result.model_id})"
    rgb = _burn_in(rgb, caption)
    uid = uid_maker(original.SOPInstanceUID, result.model_sha256)
    capture = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=reference_header(original), pixel_array=rgb, photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT", series_instance_uid=uid("overlay-series"),
        series_number=OVERLAY_SERIES_NUMBER, sop_instance_uid=uid("overlay"), instance_number=1,
        manufacturer="RadAssist", patient_orientation=_orientation(original),
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    capture.SpecificCharacterSet = "ISO_IR 192"
    capture.SeriesDescription = long_string(f"{RESEARCH_LABEL}: saliency for {finding.display_name}")
    capture.ImageComments = (f"{RESEARCH_LABEL}. Not for diagnosis. Saliency of '{finding.label}' from "
                             f"{result.model_id} (sha256 {result.model_sha256[:16]}).")
    _set_body_part(capture, original)
    capture.BurnedInAnnotation = "YES"
    capture.DerivationDescription = "Source radiograph with AI saliency overlay"
    return capture


@_quiet_about_names
def presentation_state(original: Dataset, result: ReadResult) -> Dataset | None:
    """A Grayscale Softcopy Presentation State for the original image: a circle at the saliency peak of each
    positive finding with its name and probability, and "AI — research use" on screen, on a layer of its own.
    None when no finding is positive (nothing to point at). The original pixels are untouched: any PACS viewer
    shows the annotations over them."""
    import highdicom as hd

    positive = [f for f in result.findings if f.positive and f.peak_rc is not None]
    if not positive:
        return None
    header = reference_header(original)
    rows, columns = int(header.Rows), int(header.Columns)
    radius = max(4.0, 0.06 * min(rows, columns))
    layer = hd.pr.GraphicLayer(layer_name="AI", order=1, description=long_string(f"AI findings ({RESEARCH_LABEL})"))
    circles, labels = [], []
    for finding in positive:
        row, column = finding.peak_rc
        x, y = float(column) + 0.5, float(row) + 0.5
        circles.append(hd.pr.GraphicObject(graphic_type=hd.pr.GraphicTypeValues.CIRCLE, units="PIXEL",
                                           graphic_data=np.array([[x, y], [x + radius, y]])))
        labels.append(hd.pr.TextObject(text_value=f"{finding.display_name} {finding.probability:.2f}"[:64],
                                       units="PIXEL", anchor_point=(x, max(1.0, y - radius)),
                                       anchor_point_visible=False))
    labels.append(hd.pr.TextObject(text_value=f"{RESEARCH_LABEL}: {result.model_id}"[:64], units="DISPLAY",
                                   bounding_box=(0.01, 0.01, 0.6, 0.05),
                                   text_justification=hd.pr.TextJustificationValues.LEFT))
    uid = uid_maker(original.SOPInstanceUID, result.model_sha256)
    state = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[header], series_instance_uid=uid("gsps-series"), series_number=PRESENTATION_SERIES_NUMBER,
        sop_instance_uid=uid("gsps"), instance_number=1, manufacturer="RadAssist",
        manufacturer_model_name=long_string(result.model_id) or "RadAssist", software_versions=_version(),
        device_serial_number=result.model_sha256[:16] or "none", content_label="AI_FINDINGS",
        content_description=long_string(f"AI findings ({RESEARCH_LABEL})"), graphic_layers=[layer],
        graphic_annotations=[hd.pr.GraphicAnnotation(referenced_images=[header], graphic_layer=layer,
                                                     graphic_objects=circles, text_objects=labels)],
    )
    state.SpecificCharacterSet = "ISO_IR 192"
    state.SeriesDescription = long_string(f"{RESEARCH_LABEL}: findings")
    _set_body_part(state, original)
    return state


def _set_body_part(ds: Dataset, original: Dataset) -> None:
    """General Series needs Laterality unless the body part is known to be unpaired; only QA-accepted chest
    radiographs get AI overlays, so CHEST when the source does not say."""
    ds.BodyPartExamined = original.get("BodyPartExamined") or "CHEST"


def _version() -> str:
    from radassist import __version__

    return __version__


def _orientation(original: Dataset) -> tuple[str, str]:
    value = original.get("PatientOrientation")
    if value and len(value) == 2 and all(str(v) for v in value):
        return (str(value[0]), str(value[1]))
    return ("R", "F")  # unknown: highdicom needs a value; a frontal PA chest shows the patient's right on the left


def _burn_in(rgb: np.ndarray, caption: str) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(rgb)
    size = max(12, rgb.shape[0] // 40)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((size // 2, size // 2), caption, font=font)
    draw.rectangle((box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4), fill=(0, 0, 0))
    draw.text((size // 2, size // 2), caption, font=font, fill=(255, 255, 0))
    return np.asarray(image)
