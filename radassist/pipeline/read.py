"""Reading one radiograph end to end: load -> header QA -> chest check -> lungs -> classifier -> image QA and
validated domain -> saliency -> radiomics -> report.

This is the one orchestration every host calls (CLI `read`/`report`/`batch`, the Qt viewer, Slicer), so
stage order, QA refusals and timings are the same everywhere. Each stage is timed in ms.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radassist.errors import InputRefused
from radassist.image import Radiograph
from radassist.results import Finding, QAVerdict, ReadResult
from radassist.vocabulary import Side

if TYPE_CHECKING:
    from radassist.explain.saliency import SaliencyMaps

RADIOMICS_SIDE = 128  # px: radiomics evidence is computed on a downsampled copy (speed; same scale for all)


@dataclass(frozen=True)
class ReadOptions:
    occlusion: bool = False  # add model-agnostic occlusion-sensitivity maps (64 extra forward passes)
    radiomics: bool = True
    report: bool = True
    enforce_qa: bool = True  # raise InputRefused on a QA refusal (hosts that want to show the verdict pass False)
    classifier: str = "classifier"
    lungseg: str = "lungseg"
    chest_check: str = "chest_check"


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round((time.perf_counter() - start) * 1000.0, 2)


def _refuse_or_record(result: ReadResult, options: ReadOptions) -> None:
    if not result.qa.accepted and options.enforce_qa:
        raise InputRefused(f"{Path(result.meta.source_path).name} was not read: {result.qa.reason}")


def read_radiograph(source: Radiograph | str | os.PathLike[str], options: ReadOptions = ReadOptions(),
                    on_findings: Callable[[ReadResult], None] | None = None) -> ReadResult:
    """Read one image. Raises InputRefused for unreadable input and (with enforce_qa) for QA refusals.

    `on_findings` gets a copy of the result as soon as findings and saliency exist, before radiomics and
    the report (about half the read): a viewer shows them while the rest is computed."""
    from radassist.explain import saliency as sal
    from radassist.imaging import qa
    from radassist.imaging.ctr import measure_ctr
    from radassist.imaging.lungs import segment_lungs, zone_at
    from radassist.imaging.preprocess import preprocess
    from radassist.inference.engine import load_model
    from radassist.io import read_image

    timer = _Timer()
    with timer.stage("load"):
        image = source if isinstance(source, Radiograph) else read_image(source)
    result = ReadResult(meta=image.meta, qa=qa.check_metadata(image.meta))
    chest: qa.ChestCheck | None = None
    if result.qa.accepted:
        with timer.stage("chest_check"):
            chest = qa.check_chest(image, options.chest_check)
        result.qa = QAVerdict(chest.verdict.accepted,
                              result.qa.reason if chest.verdict.accepted else chest.verdict.reason,
                              {**result.qa.checks, **chest.verdict.checks})
    _refuse_or_record(result, options)
    if not result.qa.accepted:
        result.timings_ms = timer.timings
        return result

    with timer.stage("lungs"):
        fields = segment_lungs(image, options.lungseg)
    result.lung_mask = fields.labels

    model = load_model(options.classifier)
    card = model.card
    result.model_id, result.model_sha256, result.provider = card.model_id, card.sha256, model.provider
    with timer.stage("preprocess"):
        prepared = preprocess(image, card.preprocessing)
    with timer.stage("inference"):
        outputs = model.run({card.input_name: prepared.tensor[None]})
    embedding = outputs["embedding"][0]

    with timer.stage("qa"):
        verdict = qa.check_image(fields.labels)
        if card.ood is not None:
            result.embedding_distance = qa.embedding_distance(embedding, card.ood)
            verdict.checks.update(embedding_distance=round(result.embedding_distance, 3),
                                  embedding_threshold=card.ood.threshold)
        verdict.checks = {**result.qa.checks, **verdict.checks}
        verdict.domain = qa.domain_verdict(image.meta, card, result.embedding_distance,
                                           chest.pediatric_probability if chest else None,
                                           chest is not None and chest.mirrored)
    result.qa = verdict
    _refuse_or_record(result, options)

    with timer.stage("saliency"):
        maps = sal.SaliencyMaps(image.shape)
        working_labels = fields.labels[::maps.stride, ::maps.stride]
        envelope = sal.lung_envelope(working_labels)
        crop_box = maps.working_box(prepared.crop_box)
        cams = outputs["cam"][0]
        if options.occlusion:
            cams = sal.occlusion_sensitivity(lambda batch: model.run({card.input_name: batch},
                                                                     ["logits"])["logits"], prepared.tensor)
        # where, for a finding in the lungs: the anatomy model's lesion output (measured on held-out lesion
        # references, models/lungseg.md: the classifier's CAM points no better than a random point in the lung,
        # and weighting the lesion output by it made the lesion output worse); the classifier's CAM where there
        # is no lesion output, for findings outside the lungs, and for occlusion, which was asked for by name
        lesion = lesion_side = None
        if fields.lesion is not None and not options.occlusion:
            lesion = sal.normalised_saliency(sal.lesion_weight(fields.lesion, maps.working_shape), envelope)
            lesion_side = sal.evidence_side(lesion, working_labels)
        for index, label in enumerate(card.labels):
            if not label.applies_to(verdict.domain.age_group):  # e.g. viral_pattern, learnt from children only, on an adult
                continue
            if lesion is not None and label.restrict_to_lungs:
                maps.add(label.id, lesion)
            else:
                raw = sal.to_image_space(cams[index], crop_box, maps.working_shape)
                maps.add(label.id, sal.normalised_saliency(raw, envelope if label.restrict_to_lungs else None))
            peak = maps.peak(label.id)
            zone = zone_at(fields, *peak) if peak else None
            if zone and label.restrict_to_lungs:
                side = lesion_side if lesion is not None else maps.side(label.id, working_labels)
                if side is not Side(zone.split()[0]):
                    zone = None  # the evidence does not say which side: no side is named rather than a guessed one
            probability = float(outputs["probabilities"][0][index])
            result.findings.append(Finding(
                label=label.id,
                display_name=label.display_name,
                probability=probability,
                threshold=label.threshold,
                positive=probability >= label.threshold,
                zone=zone,
                peak_rc=peak,
                conditional_on=label.conditional_on,
            ))
        result.saliency = maps
        for finding in result.findings:  # a conditional output is flagged only where its condition holds
            finding.positive = finding.positive and result.condition_met(finding)
    with timer.stage("measurements"):
        ratio = measure_ctr(fields, image.meta)
        if ratio is not None:
            measurement = ratio.as_measurement()
            result.measurements[measurement.kind] = measurement
    if on_findings is not None:
        on_findings(replace(result, findings=[replace(f) for f in result.findings], timings_ms=dict(timer.timings)))

    if options.radiomics:
        with timer.stage("radiomics"):
            _add_radiomics(image, fields.labels, maps, result)
    if options.report:
        with timer.stage("report"):
            from radassist.findings.report import draft_report

            result.report = draft_report(result)
    result.timings_ms = timer.timings
    return result


def prepare_read(options: ReadOptions = ReadOptions()) -> None:
    """Load what a read needs once per process (pydicom, both model sessions, pyradiomics, the knowledge graph),
    so the first read costs what every later read does; in a fresh process that first read was ~5x
    slower. The viewer calls this in the background when it starts."""
    import pydicom  # noqa: F401  (the DICOM reader's dependency: ~0.35 s to import)

    from radassist.explain.radiomics import prepare
    from radassist.findings.knowledge import load_knowledge_graph
    from radassist.findings.report import draft_report  # noqa: F401  (import cost only)
    from radassist.inference.engine import load_model

    load_model(options.lungseg)
    load_model(options.chest_check)
    load_model(options.classifier)
    if options.radiomics:
        prepare()
    if options.report:
        load_knowledge_graph()


def _downsample(values: np.ndarray, side: int) -> np.ndarray:
    step = max(1, int(np.ceil(max(values.shape) / side)))
    return values[::step, ::step]


def _add_radiomics(image: Radiograph, lung_labels: np.ndarray, maps: SaliencyMaps, result: ReadResult) -> None:
    """Radiomics of each lung and of the most salient region of the strongest positive finding."""
    from radassist.explain.radiomics import RUNTIME_FEATURE_CLASSES, evidence_statements, region_table
    from radassist.imaging.windowing import apply_window, model_window

    # Window only the pixels kept: the same values as downsampling the windowed image, at 1/step^2 the cost.
    image01 = apply_window(_downsample(image.pixels, RADIOMICS_SIDE), *model_window(image))
    labels = _downsample(lung_labels, RADIOMICS_SIDE)
    regions = {"right_lung": labels == 1, "left_lung": labels == 2}
    positives = [f for f in result.findings if f.positive and f.conditional_on is None]
    lead = max(positives, key=lambda f: f.probability, default=None)
    salient_side = None
    if lead is not None and lead.zone:
        # the side named in the report (the saliency peak's zone) is the side the evidence speaks about
        salient_side = "right_lung" if lead.zone.startswith("right") else "left_lung"
        side_label = 1 if salient_side == "right_lung" else 2
        saliency = maps.at_shape(lead.label, labels.shape)
        regions["salient"] = (saliency >= 0.5) & (labels == side_label)
    result.radiomics_table = region_table(image01, regions, RUNTIME_FEATURE_CLASSES)
    statements = evidence_statements(result.radiomics_table, salient_side)
    if lead is not None:
        lead.evidence = statements
    for finding in result.findings:
        if finding is not lead and finding.positive:
            finding.evidence = [s for s in statements if s.region != "salient"]
