"""Signed feedback sessions -> a de-identified dataset that `radassist train` / `evaluate` read directly.

Layout of the output folder (documented for users in the README.md written into it):
    labels.csv            the ../shared/data format: file, labels, subtype, patient_id, split, ... one row per image
    findings.csv          one row per (session, finding): AI output, reader decision, report NLP, final label
    records.jsonl         one JSON record per signed session (schema.json describes it)
    images/ID.png         8-bit copy of the image (default window), no metadata
    dicom/ID/image.dcm    de-identified DICOM image (or a Secondary Capture for non-DICOM sources)
    dicom/ID/SESSION-sr.dcm   TID 1500 Comprehensive 3D SR; dicom/ID/SESSION-seg.dcm  SEG of drawn regions
    masks/SESSION/REGION.png  one 0/255 mask per drawn region
    reports/SESSION.txt   the signed report text, scrubbed of names, ids and dates
    excluded.json, manifest.json, schema.json, README.md

What identifies what: IDs are keyed hashes (identity.py) of the store's image keys and session ids;
patients are pseudonyms from the source DICOM's patient id (raster images: one pseudonym per image).
Nothing from the local sources file (paths) is written.

The final label of a finding: the reader's explicit decision if there is one, else what the report
NLP reads in the signed text, else unknown (blank). An unreviewed AI call is never taken as the
radiologist's label.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from radassist.errors import InputRefused, RadAssistError
from radassist.feedback.deid import EDITION, Pseudonymizer
from radassist.feedback.identity import image_key_of, keyed_digest
from radassist.feedback.state import SessionState, replay
from radassist.feedback.store import EventStore

EXPORT_FORMAT_VERSION = 1
HOLDOUT_PERCENT = 20  # share of patients whose rows get split "test" (stable: decided by the pseudonym)
# ai_draft_unchanged = 1: the reader signed the AI draft with flagged findings undecided (confirmed as
# such); its labels echo the model, so fine-tuning must leave the row out.
LABELS_COLUMNS = ("file", "labels", "subtype", "patient_id", "split", "view", "source_kind", "burned_in_annotation",
                  "session_id", "final_labels", "ai_draft_unchanged")
FINDINGS_COLUMNS = ("session_id", "image_id", "patient_id", "label", "display_name", "ai_probability",
                    "ai_threshold", "ai_call", "reader_decision", "report_nlp", "final", "final_source",
                    "added_by_reader")
FINAL_VALUE = {"present": 1, "absent": 0, "uncertain": -1}


@dataclass
class ExportSummary:
    out_dir: Path
    sessions_signed: int = 0
    sessions_exported: int = 0
    images: int = 0
    regions: int = 0
    excluded: list[dict[str, str]] = field(default_factory=list)
    nlp_status: str = ""

    def line(self) -> str:
        return (f"exported {self.sessions_exported} of {self.sessions_signed} signed sessions "
                f"({self.images} images, {self.regions} regions, {len(self.excluded)} excluded) to {self.out_dir}")


@dataclass
class _Image:
    """One source image, de-identified and written once, shared by its sessions."""

    image_id: str
    patient_id: str
    png: str
    dicom: str
    dataset: Any  # pydicom Dataset of the written image (SR/SEG reference it)
    source_kind: str
    burned_in: str
    view: str
    phi_names: set[str]
    phi_identifiers: set[str]
    repairs: list[str]


class _NLP:
    """The report NLP (radassist.findings.nlp) if this installation has it; the export degrades without it."""

    def __init__(self) -> None:
        try:
            from radassist.findings.nlp import label_report

            self._label_report = label_report
            self.status = "radassist.findings.nlp.label_report"
        except ImportError as exc:
            self._label_report = None
            self.status = f"unavailable ({exc}); report_nlp columns are empty"

    def model_labels(self, text: str) -> dict[str, str]:
        if self._label_report is None:
            return {}
        try:
            return dict(self._label_report(text).model_labels)
        except (RadAssistError, OSError, ValueError, KeyError) as exc:
            self.status = f"failed on some reports ({type(exc).__name__}); their report_nlp columns are empty"
            return {}


def export_feedback(store: EventStore, out_dir: str | os.PathLike[str], *, since: datetime | None = None,
                    image_dirs: Iterable[str | os.PathLike[str]] = (), include_burned_in: bool = False
                    ) -> ExportSummary:
    """Write the dataset for every signed session (signed at or after `since`)."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise InputRefused(f"{out} is not empty; export into a new folder so datasets never mix")
    pseudonymizer = Pseudonymizer(store.secret)
    summary = ExportSummary(out_dir=out)
    nlp = _NLP()
    summary.nlp_status = nlp.status
    finder = _SourceFinder(store, [Path(d) for d in image_dirs])

    signed = _latest_signed_sessions(store, since)
    summary.sessions_signed = len(signed)
    for folder in ("images", "dicom", "masks", "reports"):
        (out / folder).mkdir(parents=True, exist_ok=True)

    images: dict[str, _Image] = {}
    records, finding_rows, label_rows = [], [], {}
    for state in signed:
        export_session = "s-" + keyed_digest(store.secret, "export-session", state.session_id).hex()[:16]
        image = images.get(state.image_key)
        if image is None:
            try:
                image = _export_image(state, finder, pseudonymizer, out, include_burned_in)
            except _Excluded as reason:
                summary.excluded.append({"session_id": export_session, "reason": str(reason)})
                continue
            images[state.image_key] = image
        record, rows = _export_session(state, export_session, image, pseudonymizer, nlp, out, summary)
        records.append(record)
        finding_rows += rows
        label_rows[image.image_id] = _labels_row(record, image)  # sessions come oldest first: newest wins
    summary.sessions_exported = len(records)
    summary.images = len(images)
    summary.nlp_status = nlp.status

    _write_csv(out / "labels.csv", LABELS_COLUMNS, label_rows.values())
    _write_csv(out / "findings.csv", FINDINGS_COLUMNS, finding_rows)
    with open(out / "records.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
    (out / "excluded.json").write_text(json.dumps(summary.excluded, indent=2) + "\n", encoding="utf-8")
    (out / "schema.json").write_text(json.dumps(RECORD_SCHEMA, indent=2) + "\n", encoding="utf-8")
    manifest = _manifest(summary, store, since, include_burned_in, images.values())
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(_datasheet(manifest), encoding="utf-8")
    return summary


# --- which sessions --------------------------------------------------------------------------------

def _latest_signed_sessions(store: EventStore, since: datetime | None) -> list[SessionState]:
    events_by_session: dict[str, list] = {}
    for event in store.events():
        events_by_session.setdefault(event.session_id, []).append(event)
    cutoff = since.astimezone(timezone.utc).isoformat(timespec="microseconds") if since else None
    states = [replay(events) for events in events_by_session.values()]
    signed = [s for s in states if s.signed and s.image_key and (cutoff is None or s.signed_utc >= cutoff)]
    return sorted(signed, key=lambda s: s.signed_utc or "")


# --- finding the source image ----------------------------------------------------------------------

class _Excluded(Exception):
    """A session that cannot be exported; the message (no PHI) goes to excluded.json."""


class _SourceFinder:
    """Source path by image key: the local sources file first, else a scan of the --images folders."""

    def __init__(self, store: EventStore, folders: list[Path]):
        self.store = store
        self.folders = folders
        self._scanned: dict[str, Path] | None = None

    def find(self, image_key: str):
        """(path, radiograph) of the image with this key."""
        from radassist.io import read_image

        recorded = self.store.source_of(image_key)
        if recorded and Path(recorded).is_file():
            try:
                radiograph = read_image(recorded)
                if image_key_of(radiograph, self.store.secret)[0] == image_key:
                    return Path(recorded), radiograph
            except RadAssistError:
                pass
        path = self._scan().get(image_key)
        if path is None:
            raise _Excluded("source image not found (moved or deleted; pass --images FOLDER to search)")
        return path, read_image(path)

    def _scan(self) -> dict[str, Path]:
        if self._scanned is None:
            from radassist.io import read_image

            self._scanned = {}
            for folder in self.folders:
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    try:
                        key = image_key_of(read_image(path), self.store.secret)[0]
                    except RadAssistError:
                        continue
                    self._scanned.setdefault(key, path)
        return self._scanned


# --- one image -------------------------------------------------------------------------------------

def _export_image(state: SessionState, finder: _SourceFinder, pseudonymizer: Pseudonymizer, out: Path,
                  include_burned_in: bool) -> _Image:
    from radassist.imaging.windowing import normalized_for_model

    path, radiograph = finder.find(state.image_key)
    image_id = "i-" + keyed_digest(pseudonymizer.secret, "export-image", state.image_key).hex()[:16]
    folder = out / "dicom" / image_id
    folder.mkdir(parents=True, exist_ok=True)
    if radiograph.meta.file_format == "DICOM":
        dataset, outcome_fields = _deidentified_dicom(path, pseudonymizer, state.image_key)
    else:
        dataset, outcome_fields = _secondary_capture(radiograph, pseudonymizer, state.image_key)
    if outcome_fields["burned_in"] == "YES" and not include_burned_in:
        raise _Excluded("BurnedInAnnotation=YES: pixels may show identifying text (--include-burned-in to keep)")
    dataset.save_as(folder / "image.dcm", enforce_file_format=True)
    pixels = np.round(normalized_for_model(radiograph) * 255.0).astype(np.uint8)
    Image.fromarray(pixels).save(out / "images" / f"{image_id}.png", optimize=True)
    return _Image(
        image_id=image_id, patient_id=outcome_fields["patient"], png=f"images/{image_id}.png",
        dicom=f"dicom/{image_id}/image.dcm", dataset=dataset, source_kind=outcome_fields["kind"],
        burned_in=outcome_fields["burned_in"], view=str(dataset.get("ViewPosition", "") or ""),
        phi_names=outcome_fields["names"], phi_identifiers=outcome_fields["identifiers"],
        repairs=outcome_fields["repairs"],
    )


def _deidentified_dicom(path: Path, pseudonymizer: Pseudonymizer, image_key: str):
    import pydicom

    from radassist.feedback.conformance import make_conformant
    from radassist.feedback.deid import deidentify

    dataset = pydicom.dcmread(path, force=True)
    outcome = deidentify(dataset, pseudonymizer, fallback_patient_key=image_key)
    repairs = make_conformant(dataset, pseudonymizer.uid)
    return dataset, {"patient": outcome.patient_pseudonym, "kind": "DICOM", "burned_in": outcome.burned_in_annotation,
                     "names": outcome.phi_names, "identifiers": outcome.phi_identifiers, "repairs": repairs}


def _secondary_capture(radiograph, pseudonymizer: Pseudonymizer, image_key: str):
    from radassist.feedback.conformance import make_conformant
    from radassist.feedback.dicom_outputs import secondary_capture
    from radassist.imaging.windowing import normalized_for_model

    patient = pseudonymizer.patient(f"image:{image_key}")
    pixels = np.round(normalized_for_model(radiograph) * 255.0).astype(np.uint8)
    dataset = secondary_capture(
        pixels, patient_pseudonym=patient, study_uid=pseudonymizer.uid(f"study:{image_key}"),
        series_uid=pseudonymizer.uid(f"series:{image_key}"), instance_uid=pseudonymizer.uid(f"image:{image_key}"))
    make_conformant(dataset, pseudonymizer.uid)  # what highdicom leaves out (e.g. Laterality); not a repair
    return dataset, {"patient": patient, "kind": "raster", "burned_in": "", "names": set(), "identifiers": set(),
                     "repairs": []}


# --- one session -----------------------------------------------------------------------------------

def _export_session(state: SessionState, session_id: str, image: _Image, pseudonymizer: Pseudonymizer, nlp: _NLP,
                    out: Path, summary: ExportSummary) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from radassist.feedback.dicom_outputs import measurement_report, segmentation
    from radassist.feedback.regions import mask_of
    from radassist.feedback.scrub import name_tokens, scrub_text

    names = name_tokens(*image.phi_names)
    report_text = scrub_text(state.signed_text or "", names=names, identifiers=image.phi_identifiers)
    (out / "reports" / f"{session_id}.txt").write_text(report_text, encoding="utf-8")
    nlp_labels = nlp.model_labels(report_text)

    rows, columns = int(image.dataset.Rows), int(image.dataset.Columns)
    masks: dict[str, np.ndarray] = {}
    regions = []
    for region in state.regions.values():
        mask = mask_of(region.geometry, rows, columns)
        masks[region.region_id] = mask
        mask_path = out / "masks" / session_id / f"{region.region_id}.png"
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path, optimize=True)
        regions.append({"region_id": region.region_id, "label": region.label, "geometry": region.geometry,
                        "mask": mask_path.relative_to(out).as_posix(), "pixels": int(mask.sum())})
    summary.regions += len(regions)

    def uid(name: str) -> str:
        return pseudonymizer.uid(f"{session_id}:{name}")

    reader = pseudonymizer.reader(state.reader_id)
    dicom_dir = out / "dicom" / image.image_id
    sr_path = dicom_dir / f"{session_id}-sr.dcm"
    measurement_report(image.dataset, state, reader_pseudonym=reader, uid=uid,
                       device_uid=pseudonymizer.uid(f"device:{state.model_id}:{state.model_sha256}")
                       ).save_as(sr_path, enforce_file_format=True)
    seg = segmentation(image.dataset, state, masks, uid)
    seg_path = None
    if seg is not None:
        seg_path = dicom_dir / f"{session_id}-seg.dcm"
        seg.save_as(seg_path, enforce_file_format=True)

    findings, finding_rows = [], []
    for finding in state.findings.values():
        nlp_value = nlp_labels.get(finding.label)
        final: str | None
        if finding.decision is not None:
            final, source = finding.decision, "reader_decision"
        elif nlp_value is not None:
            final, source = nlp_value, "report_nlp"
        else:
            final, source = None, ""
        entry = {
            "label": finding.label, "display_name": finding.display_name,
            "ai_probability": finding.ai_probability, "ai_threshold": finding.ai_threshold,
            "ai_call": None if finding.ai_positive is None else ("present" if finding.ai_positive else "absent"),
            "reader_decision": finding.decision, "report_nlp": nlp_value, "final": final, "final_source": source,
            "added_by_reader": finding.added_by_reader,
        }
        findings.append(entry)
        finding_rows.append({"session_id": session_id, "image_id": image.image_id, "patient_id": image.patient_id,
                             **{k: ("" if v is None else v) for k, v in entry.items()}})
    opened = datetime.fromisoformat(state.opened_utc) if state.opened_utc else None
    seconds = (datetime.fromisoformat(state.signed_utc) - opened).total_seconds() if opened else None
    edited = sum(1 for s in state.sentences.values() if s.text != s.draft_text)
    record = {
        "format_version": EXPORT_FORMAT_VERSION,
        "session_id": session_id,
        "image_id": image.image_id,
        "patient_id": image.patient_id,
        "reader": reader,
        "model": {"id": state.model_id, "sha256": state.model_sha256},
        "image": {"png": image.png, "dicom": image.dicom, "source_kind": image.source_kind,
                  "rows": rows, "columns": columns, "burned_in_annotation": image.burned_in,
                  "conformance_repairs": image.repairs},
        "findings": findings,
        "regions": regions,
        "report": {"text_file": f"reports/{session_id}.txt", "draft_sentences": len(state.sentences), "edited_sentences": edited},
        "dicom": {"sr": sr_path.relative_to(out).as_posix(),
                  "seg": seg_path.relative_to(out).as_posix() if seg_path else None},
        "seconds_to_sign": seconds,
        "event_count": state.event_count,
        "signed_ai_draft_unchanged": state.signed_ai_draft_unchanged,
    }
    return record, finding_rows


def _labels_row(record: dict[str, Any], image: _Image) -> dict[str, Any]:
    """labels.csv row in the ../shared/data format (see radassist.training.labels for the names)."""
    final = {f["label"]: f["final"] for f in record["findings"] if f["final"] is not None}
    present = sorted(label for label, value in final.items() if value == "present" and label != "viral_pattern")
    primary = [f["label"] for f in record["findings"] if f["ai_probability"] is not None and f["label"] != "viral_pattern"]
    if present:
        labels = "|".join(present)
    elif primary and all(final.get(label) == "absent" for label in primary):
        labels = "No Finding"
    else:
        labels = ""  # unknown: training and evaluation skip the row's labels
    subtype = ""
    if final.get("pneumonia") == "present" and final.get("viral_pattern") in ("present", "absent"):
        subtype = "viral" if final["viral_pattern"] == "present" else "bacterial"
    holdout = int(hashlib.sha256(image.patient_id.encode("ascii")).hexdigest()[:8], 16) % 100 < HOLDOUT_PERCENT
    return {
        "file": image.png, "labels": labels, "subtype": subtype, "patient_id": image.patient_id,
        "split": "test" if holdout else "train", "view": image.view, "source_kind": image.source_kind,
        "burned_in_annotation": image.burned_in, "session_id": record["session_id"],
        "final_labels": ";".join(f"{label}={FINAL_VALUE[value]}" for label, value in sorted(final.items())),
        "ai_draft_unchanged": int(record["signed_ai_draft_unchanged"]),
    }


def _write_csv(path: Path, columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# --- documentation ---------------------------------------------------------------------------------

def _manifest(summary: ExportSummary, store: EventStore, since: datetime | None, include_burned_in: bool,
              images: Iterable[_Image]) -> dict[str, Any]:
    images = list(images)
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "store_schema_version": store.schema_version(),
        "since": since.isoformat() if since else None,
        "include_burned_in": include_burned_in,
        "sessions_signed": summary.sessions_signed,
        "sessions_exported": summary.sessions_exported,
        "images": summary.images,
        "regions": summary.regions,
        "excluded": dict(Counter(e["reason"] for e in summary.excluded)),
        "source_kinds": dict(Counter(i.source_kind for i in images)),
        "burned_in_annotation": dict(Counter(i.burned_in or "not stated" for i in images)),
        "conformance_repairs": dict(Counter(r for i in images for r in i.repairs)),
        "deidentification": f"DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile (Table E.1-1, "
                            f"edition {EDITION}) with the Retain Longitudinal Temporal Information with Modified "
                            "Dates Option; private attributes removed; UIDs replaced by keyed hashes; fail-closed: "
                            "every person name, date/time and free-text attribute the table does not list removed",
        "report_nlp": summary.nlp_status,
        "holdout_percent": HOLDOUT_PERCENT,
    }


def _datasheet(manifest: dict[str, Any]) -> str:
    return f"""# RadAssist feedback dataset

Radiologists' corrections of RadAssist's AI reads, exported de-identified by `radassist export`.
Research use; not clinical validation. Handle as pseudonymised data: re-identification is possible
for whoever holds the exporting installation's secret key and the original archive.

## Contents
| item | count |
|---|---|
| signed sessions in the store (selected) | {manifest['sessions_signed']} |
| sessions exported | {manifest['sessions_exported']} |
| images | {manifest['images']} |
| drawn regions | {manifest['regions']} |
| excluded sessions | {sum(manifest['excluded'].values())} ({json.dumps(manifest['excluded'])}) |

Source kinds: {json.dumps(manifest['source_kinds'])}. BurnedInAnnotation: {json.dumps(manifest['burned_in_annotation'])}.

## Files
- `labels.csv`: one row per image, the format of RadAssist's training folders: `file`, `labels`
  (radiologist-final findings present, `|`-separated model label ids; `No Finding` when every model
  finding is final-absent; empty when unknown), `subtype` (viral/bacterial when pneumonia is present and
  the viral pattern was judged), `patient_id` (pseudonym), `split` ({manifest['holdout_percent']}% of
  patients `test`, stable per patient), `view`, `source_kind`, `burned_in_annotation`, `session_id`,
  `final_labels` (label=1 present, 0 absent, -1 uncertain), `ai_draft_unchanged` (1: the reader signed
  the AI draft with flagged findings undecided, as confirmed; its labels echo the model, so leave the
  row out of training). The newest signed session of an image wins.
- `findings.csv`: per session and finding: AI probability, threshold and call, the reader's decision,
  the report NLP's reading of the signed text, the final label and where it came from.
- `records.jsonl`: one record per session; `schema.json` is its JSON Schema.
- `images/`: 8-bit PNG (the image's default window), no metadata. `masks/`: one 0/255 PNG per region.
- `dicom/<image>/image.dcm`: the de-identified DICOM image (a Secondary Capture for non-DICOM sources);
  `<session>-sr.dcm`: Comprehensive 3D SR, TID 1500 Measurement Report (the model as device observer
  and algorithm, the reader as person observer, one measurement group per finding and per region);
  `<session>-seg.dcm`: DICOM Segmentation of the drawn regions. All reference the image.
- `reports/`: signed report texts.

## How labels were made
Final label = the reader's explicit decision (accept = present, reject = absent, uncertain, added =
present); else the report NLP's label of the signed text; else unknown. Report NLP: {manifest['report_nlp']}.

## De-identification
{manifest['deidentification']}. Patient name and id become a consistent pseudonym; dates and times are
shifted by a secret per-patient offset (1-10 years back; intervals kept); UIDs get consistent 2.25
replacements; PatientIdentityRemoved=YES and the method codes (DCM 113100, 113107) are set.
Images flagged BurnedInAnnotation=YES are {'kept and flagged' if manifest['include_burned_in'] else 'left out'}.
Conformance repairs of legacy files (pixels untouched): {json.dumps(manifest['conformance_repairs'])}.
Report texts: names (every person name in the image header) and ids found in the header are removed,
then dates, titled names, labelled names, capitalised names after a word that introduces a person
("patient", "per", "discussed with", "called to", ...), long numbers and e-mail addresses. Finding names
and region labels the reader typed went through the same scrubber before they were stored.

## Known limits
- Pixels are not examined: burned-in text in an image that does not declare it is not found.
- A name in a report that is not in the image header and is neither titled, labelled ("name:") nor
  introduced by a person word (e.g. "John was on the ward"), or is written in lower case, is not found.
- Images that were not DICOM carry no patient identity: each is its own pseudonymous patient.
- Reading times are relative (seconds to sign); no absolute event times are exported.
"""


_FINDING_SCHEMA = {
    "type": "object",
    "required": ["label", "display_name", "ai_probability", "ai_threshold", "ai_call", "reader_decision",
                 "report_nlp", "final", "final_source", "added_by_reader"],
    "properties": {
        "label": {"type": "string"},
        "display_name": {"type": "string"},
        "ai_probability": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "ai_threshold": {"type": ["number", "null"]},
        "ai_call": {"enum": ["present", "absent", None]},
        "reader_decision": {"enum": ["present", "absent", "uncertain", None]},
        "report_nlp": {"enum": ["present", "absent", "uncertain", None]},
        "final": {"enum": ["present", "absent", "uncertain", None]},
        "final_source": {"enum": ["reader_decision", "report_nlp", ""]},
        "added_by_reader": {"type": "boolean"},
    },
    "additionalProperties": False,
}
RECORD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "RadAssist feedback record (one signed reading session)",
    "type": "object",
    "required": ["format_version", "session_id", "image_id", "patient_id", "reader", "model", "image", "findings",
                 "regions", "report", "dicom", "seconds_to_sign", "event_count", "signed_ai_draft_unchanged"],
    "properties": {
        "format_version": {"const": EXPORT_FORMAT_VERSION},
        "session_id": {"type": "string", "pattern": "^s-[0-9a-f]{16}$"},
        "image_id": {"type": "string", "pattern": "^i-[0-9a-f]{16}$"},
        "patient_id": {"type": "string", "pattern": "^RA[0-9A-F]{10}$"},
        "reader": {"type": "string", "pattern": "^reader-[0-9a-f]{8}$"},
        "model": {"type": "object", "required": ["id", "sha256"],
                  "properties": {"id": {"type": "string"}, "sha256": {"type": "string"}}},
        "image": {"type": "object",
                  "required": ["png", "dicom", "source_kind", "rows", "columns", "burned_in_annotation",
                               "conformance_repairs"],
                  "properties": {"png": {"type": "string"}, "dicom": {"type": "string"},
                                 "source_kind": {"enum": ["DICOM", "raster"]},
                                 "rows": {"type": "integer", "minimum": 1}, "columns": {"type": "integer", "minimum": 1},
                                 "burned_in_annotation": {"type": "string"},
                                 "conformance_repairs": {"type": "array", "items": {"type": "string"}}}},
        "findings": {"type": "array", "items": _FINDING_SCHEMA},
        "regions": {"type": "array", "items": {
            "type": "object", "required": ["region_id", "label", "geometry", "mask", "pixels"],
            "properties": {"region_id": {"type": "string"}, "label": {"type": "string"},
                           "geometry": {"type": "object", "required": ["kind"],
                                        "properties": {"kind": {"enum": ["polygon", "rectangle", "ellipse"]}}},
                           "mask": {"type": "string"}, "pixels": {"type": "integer", "minimum": 0}}}},
        "report": {"type": "object", "required": ["text_file", "draft_sentences", "edited_sentences"]},
        "dicom": {"type": "object", "required": ["sr", "seg"],
                  "properties": {"sr": {"type": "string"}, "seg": {"type": ["string", "null"]}}},
        "seconds_to_sign": {"type": ["number", "null"]},
        "event_count": {"type": "integer", "minimum": 1},
        "signed_ai_draft_unchanged": {"type": "boolean"},
    },
    "additionalProperties": False,
}
