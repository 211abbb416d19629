"""The reading session (radassist.feedback.reading): one owner of a reading's state, replayed from a
real SQLite store, for the signing rules and "nothing lost" of issue 17.

Images are the bundled samples read through the real reader. The AI result is SIMULATED (a ReadResult
with chosen probabilities): these tests are about what a reading does with a result, not the model.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from radassist.cli import main as cli_main
from radassist.errors import InputRefused
from radassist.feedback import EventStore
from radassist.feedback.reading import Reading, StudyStatus, reader_sentence_id, study_statuses
from radassist.feedback.session import FeedbackSession, SigningRefused
from radassist.image import Radiograph
from radassist.io import read_image
from radassist.paths import resources_dir
from radassist.results import (
    DraftReport,
    Finding,
    Measurement,
    MeasurementKind,
    QAVerdict,
    ReadResult,
    ReportSentence,
)
from radassist.vocabulary import Decision, Section

SAMPLE = resources_dir() / "samples" / "pediatric_viral_pneumonia.png"
OTHER_SAMPLE = resources_dir() / "samples" / "pediatric_normal.png"


def simulated_result(radiograph: Radiograph) -> ReadResult:
    """A SIMULATED AI read: pneumonia flagged, opacity not; a two-sentence draft."""
    return ReadResult(
        meta=radiograph.meta, qa=QAVerdict(True, "frontal chest radiograph"), model_id="cxr-sim",
        model_sha256="7" * 64, findings=[Finding("pneumonia", "Pneumonia", 0.91, 0.5, True, zone="right lower zone"),
                                         Finding("opacity", "Lung opacity", 0.12, 0.5, False)],
        report=DraftReport([
            ReportSentence("FINDINGS", "Airspace opacity in the right lower zone.", None, "pneumonia", 0.91,
                           "likely", "s0"),
            ReportSentence("IMPRESSION", "Likely pneumonia.", None, "pneumonia", 0.91, "likely", "s1")]))


@pytest.fixture()
def store(tmp_path: Path, data_dir: Path):
    with EventStore(tmp_path / "feedback.sqlite") as opened:
        yield opened


def open_reading(store: EventStore, path: Path = SAMPLE, reader: str = "dr-a") -> Reading:
    radiograph = read_image(path)
    reading = Reading.open(store, radiograph, reader_id=reader)
    reading.show_ai_result(simulated_result(radiograph))
    return reading


def event_types(store: EventStore, session_id: str) -> list[str]:
    return [event.type.value for event in store.events(session_id)]


# --- rule 2: signing --------------------------------------------------------------------------------


def test_signing_waits_for_every_flagged_finding(store):
    reading = open_reading(store)
    with pytest.raises(SigningRefused, match="Pneumonia"):
        reading.sign()
    assert not reading.signed
    reading.agree("pneumonia")
    reading.sign()  # opacity was not flagged: it needs no decision
    assert reading.signed and not reading.state.signed_ai_draft_unchanged
    assert reading.state.signed_text.startswith("FINDINGS: Airspace opacity in the right lower zone.")


def test_two_signatures_refused_and_signed_reopens_read_only(store):
    reading = open_reading(store)
    reading.agree("pneumonia")
    reading.sign()
    with pytest.raises(SigningRefused, match="already signed"):
        reading.sign()
    reading.close()

    again = open_reading(store, reader="dr-b")  # another reader, a later day: the same signed reading
    assert again.session_id == reading.session_id and again.signed
    for change in (lambda: again.sign(), lambda: again.decide("opacity", Decision.PRESENT),
                   lambda: again.edit_sentence("s0", "Changed.")):
        with pytest.raises(SigningRefused):
            change()
    assert not again.undo()
    again.add_addendum("Follow-up film advised.")
    assert again.state.addenda == ["Follow-up film advised."]
    types = event_types(store, reading.session_id)
    assert types.count("report_signed") == 1 and types[-1] == "addendum_added"
    assert [e.reader_id for e in store.events(reading.session_id)][-1] == "dr-b"


def test_unchanged_draft_signature_is_recorded_and_flagged_in_the_export(store, tmp_path):
    reading = open_reading(store)
    reading.sign(ai_draft_unchanged=True)
    signature = store.events(reading.session_id)[-1]
    assert signature.payload["ai_draft_unchanged"] is True and signature.payload["undecided"] == ["pneumonia"]

    reviewed = open_reading(store, OTHER_SAMPLE)
    reviewed.disagree("pneumonia")
    reviewed.sign()
    store.close()
    out = tmp_path / "export"
    assert cli_main(["export", "--out", str(out), "--store", str(tmp_path / "feedback.sqlite")]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert sorted(r["signed_ai_draft_unchanged"] for r in records) == [False, True]
    with open(out / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["ai_draft_unchanged"] for row in rows) == ["0", "1"]


def test_reader_identity_is_required(store):
    with pytest.raises(InputRefused, match="reader"):
        Reading.open(store, read_image(SAMPLE), reader_id=" ")


# --- rule 3: nothing lost ---------------------------------------------------------------------------


def test_leaving_an_image_and_coming_back_restores_the_reading(store):
    first = open_reading(store)
    first.agree("pneumonia")
    first.disagree("opacity")  # the AI did not flag it; disagreeing means present
    region = first.draw_region("pneumonia", {"kind": "rectangle", "x0": 10, "y0": 20, "x1": 60, "y1": 90})
    first.edit_sentence("s0", "Dense consolidation in the right lower zone.")
    first.close()
    open_reading(store, OTHER_SAMPLE).close()  # the next image

    back = open_reading(store)
    assert back.session_id == first.session_id
    assert back.decision("pneumonia") is Decision.PRESENT and back.decision("opacity") is Decision.PRESENT
    assert list(back.state.regions) == [region]
    assert back.state.sentences["s0"].text == "Dense consolidation in the right lower zone."
    assert event_types(store, back.session_id).count("ai_result_shown") == 1  # the draft was not recorded again


def test_undo_redo_of_text_keeps_provenance(store):
    reading = open_reading(store)
    reading.edit_sentence("s1", "B.")
    assert not reading.state.sentences["s1"].untouched_ai_text
    assert reading.undo()
    sentence = reading.state.sentences["s1"]
    assert sentence.text == "Likely pneumonia." and sentence.untouched_ai_text  # the AI tint comes back
    assert sentence.source_label == "pneumonia" and sentence.band == "likely"
    assert reading.redo() and reading.state.sentences["s1"].text == "B."
    reading.edit_sentence("s1", "")
    assert reading.state.section_text(Section.IMPRESSION) == ""
    assert reading.undo() and reading.state.section_text(Section.IMPRESSION) == "B."
    assert reading.undo() and reading.state.sentences["s1"].untouched_ai_text
    assert not reading.undo() and not reading.state.has_reader_work


def test_undo_redo_of_decisions_and_regions(store):
    reading = open_reading(store)
    reading.agree("pneumonia")
    region = reading.draw_region("pneumonia", {"kind": "rectangle", "x0": 1, "y0": 1, "x1": 30, "y1": 30})
    assert reading.undo() and region not in reading.state.regions
    assert reading.undo() and reading.decision("pneumonia") is None
    assert reading.redo() and reading.decision("pneumonia") is Decision.PRESENT
    assert reading.redo() and region in reading.state.regions
    assert not reading.redo()


def test_regions_are_clipped_to_the_image(store):
    reading = open_reading(store)
    rows, columns = reading.state.rows, reading.state.columns
    box = reading.draw_region("pneumonia", {"kind": "rectangle", "x0": -40, "y0": -5, "x1": columns + 90,
                                            "y1": 50})
    outline = reading.draw_region("pneumonia", {"kind": "polygon", "points": [[-3, -3], [20, rows + 7], [40, 10]]})
    assert reading.state.regions[box].geometry == {"kind": "rectangle", "x0": 0.0, "y0": 0.0,
                                                    "x1": float(columns), "y1": 50.0}
    assert reading.state.regions[outline].geometry["points"] == [[0.0, 0.0], [20.0, float(rows)], [40.0, 10.0]]


def test_plain_text_section_edit_keeps_the_provenance_of_unchanged_ai_sentences(store):
    reading = open_reading(store)
    reading.set_section_text(Section.FINDINGS, "Airspace opacity in the right lower zone. Small effusion.")
    sentences = reading.state.sentences
    assert sentences["s0"].untouched_ai_text
    assert sentences[reader_sentence_id(Section.FINDINGS)].text == "Small effusion."
    reading.set_section_text(Section.IMPRESSION, "Pneumonia with effusion.")
    assert reading.state.sentences["s1"].text == ""
    assert reading.state.section_text(Section.IMPRESSION) == "Pneumonia with effusion."


def test_study_status_unread_read_signed(store):
    paths = [SAMPLE, OTHER_SAMPLE, resources_dir() / "samples" / "adult_covid19_hannover.png"]
    assert set(study_statuses(store, paths).values()) == {StudyStatus.UNREAD}
    signed = open_reading(store)
    signed.agree("pneumonia")
    signed.sign()
    open_reading(store, OTHER_SAMPLE)
    statuses = study_statuses(store, paths)
    assert [statuses[os.path.abspath(p)] for p in paths] == [StudyStatus.SIGNED, StudyStatus.READ,
                                                             StudyStatus.UNREAD]


# --- crash mid-reading, then reopen -----------------------------------------------------------------

CHILD = r"""
import json, sys, time
from radassist.feedback import EventStore
from radassist.feedback.reading import Reading
from radassist.io import read_image
from radassist.results import Measurement, MeasurementKind
sys.path.insert(0, sys.argv[3])
from test_reading import simulated_result

store = EventStore(sys.argv[1])
radiograph = read_image(sys.argv[2])
reading = Reading.open(store, radiograph, reader_id="dr-crash")
reading.show_ai_result(simulated_result(radiograph))
reading.agree("pneumonia")
reading.decide("opacity", "uncertain")
reading.draw_region("pneumonia", {"kind": "polygon", "points": [[5, 5], [80, 12], [40, 70]]})
ai_ctr = Measurement(MeasurementKind.CARDIOTHORACIC_RATIO, 0.4, points=((90, 40), (90, 80), (70, 10), (70, 110)))
reading.correct_measurement(ai_ctr, Measurement(MeasurementKind.CARDIOTHORACIC_RATIO, 0.5,
                                                points=((90, 35), (90, 84), (70, 10), (70, 110))))
reading.edit_sentence("s0", "Consolidation, right lower zone.")
reading.edit_sentence("s1", "Pneumonia.")
reading.undo()
state = reading.state
print(json.dumps({"session": reading.session_id,
                  "decisions": {k: f.decision for k, f in state.findings.items()},
                  "regions": {k: r.geometry for k, r in state.regions.items()},
                  "sentences": {k: s.text for k, s in state.sentences.items()},
                  "ctr": reading.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO).points,
                  "redo": state.redo_stack}), flush=True)
time.sleep(600)
"""


def test_crash_mid_reading_then_reopen_shows_the_same_reading(tmp_path, data_dir):
    store_path = tmp_path / "feedback.sqlite"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(store_path), str(SAMPLE), str(Path(__file__).parent)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = child.stdout.readline()
        assert line, child.stderr.read()
        before = json.loads(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with EventStore(store_path) as store:
        assert store.integrity_check() == "ok"
        reading = Reading.open(store, read_image(SAMPLE), reader_id="dr-crash")
        state = reading.state
        assert reading.session_id == before["session"]
        assert {k: f.decision for k, f in state.findings.items()} == before["decisions"]
        assert {k: r.geometry for k, r in state.regions.items()} == before["regions"]
        assert {k: s.text for k, s in state.sentences.items()} == before["sentences"]
        assert state.sentences["s1"].untouched_ai_text  # the undone edit: AI text again, with its provenance
        corrected = reading.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO)  # the dragged CTR lines
        assert corrected is not None and corrected.value == 0.5 and [list(p) for p in corrected.points] == before["ctr"]
        assert reading.redo() and reading.state.sentences["s1"].text == "Pneumonia."  # redo survives the crash


# --- the corrected cardiothoracic ratio: part of the reading (no Qt) --------------------------------


def ctr(heart: tuple[int, int, int], thorax: tuple[int, int, int], note: str | None = None) -> Measurement:
    """A CTR measurement from (row, left, right) of the heart and the thorax line."""
    from radassist.imaging.ctr import CardiothoracicRatio, HorizontalLine

    return CardiothoracicRatio(HorizontalLine(*heart), HorizontalLine(*thorax), note).as_measurement()


def test_a_corrected_ctr_is_replayed_on_coming_back_undone_and_redone(store):
    ai = ctr((300, 200, 330), (250, 100, 420), note="AP film: overestimates")
    moved = ctr((300, 190, 350), (250, 100, 420), note="AP film: overestimates")
    first = open_reading(store)
    assert first.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO) is None  # the AI's stands
    first.correct_measurement(ai, moved)
    assert first.state.has_reader_work
    first.close()
    open_reading(store, OTHER_SAMPLE).close()  # the next image

    back = open_reading(store)
    assert back.session_id == first.session_id
    assert back.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO) == moved  # lines, ratio and note
    corrected = back.state.measurements[MeasurementKind.CARDIOTHORACIC_RATIO]
    assert corrected.value == pytest.approx(161 / 321, abs=1e-4) and corrected.ai_value == ai.value

    again = ctr((300, 190, 360), (250, 100, 420))
    back.correct_measurement(moved, again)
    assert back.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO).value == again.value
    assert back.state.measurements[MeasurementKind.CARDIOTHORACIC_RATIO].ai_value == ai.value
    assert back.undo() and back.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO) == moved
    assert back.undo() and back.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO) is None
    assert back.redo() and back.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO) == moved


def test_a_correction_the_viewer_could_not_draw_is_refused(store):
    reading = open_reading(store)
    session = FeedbackSession.resume(reading.session_id, store)  # the recording API under every host
    with pytest.raises(InputRefused, match="end points"):
        session.correct_measurement(MeasurementKind.CARDIOTHORACIC_RATIO.value, {"value": 0.4},
                                    {"value": 0.5, "points": [[1.0, "x"]]})
    with pytest.raises(InputRefused, match="not a measurement"):
        session.correct_measurement("spleen_size", {}, {"value": 0.5, "points": [[1.0, 2.0]]})
    assert reading.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO) is None
