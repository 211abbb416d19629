"""Report NLP: sections, sentences, negation, uncertainty, history and the graph's synonyms."""

from __future__ import annotations

import pytest

from radassist.findings.nlp import label_report, split_sections, split_sentences


def labels(text: str) -> dict[str, str]:
    return label_report(text).labels


@pytest.mark.parametrize(("text", "finding", "expected"), [
    # negation before and after the finding, across a list
    ("No focal consolidation, pneumothorax or large pleural effusion.", "Pneumothorax", "absent"),
    ("No focal consolidation, pneumothorax or large pleural effusion.", "PleuralEffusion", "absent"),
    ("Pneumothorax is not seen.", "Pneumothorax", "absent"),
    ("The lungs are clear of focal airspace disease, pneumothorax, or pleural effusion.", "PleuralEffusion", "absent"),
    ("Heart size and pulmonary vascularity appear within normal limits.", "Cardiomegaly", "absent"),
    ("The heart is not enlarged.", "Cardiomegaly", "absent"),
    ("There is no focal air space opacity to suggest a pneumonia.", "Pneumonia", "absent"),
    # a terminator ends the negation's reach
    ("No pneumothorax, but there is a small left pleural effusion.", "PleuralEffusion", "present"),
    ("No pneumothorax, but there is a small left pleural effusion.", "Pneumothorax", "absent"),
    # pseudo-negation is not negation
    ("No change in the mild cardiomegaly.", "Cardiomegaly", "present"),
    # possible hedges -> uncertain
    ("Cannot exclude early pulmonary edema.", "PulmonaryEdema", "uncertain"),
    ("Streaky opacity may represent atelectasis.", "Atelectasis", "uncertain"),
    ("Streaky opacity may represent atelectasis.", "Opacity", "present"),
    ("Subtle right basilar infiltrate cannot be excluded.", "Infiltrate", "uncertain"),
    ("Question of a small left effusion.", "PleuralEffusion", "uncertain"),
    ("Interstitial prominence suggestive of edema.", "PulmonaryEdema", "uncertain"),
    # committed hedges and named alternatives -> present (documented in nlp.py)
    ("Probable left basilar atelectasis.", "Atelectasis", "present"),
    ("Bibasilar opacities consistent with atelectasis.", "Atelectasis", "present"),
    ("Left basilar opacity, atelectasis versus infiltrate.", "Infiltrate", "present"),
    # history and resolution
    ("History of pneumonia.", "Pneumonia", None),
    ("Status post CABG.", "SupportDevice", None),
    ("Interval resolution of the right lower lobe pneumonia.", "Pneumonia", "absent"),
    ("The right pleural effusion has resolved.", "PleuralEffusion", "absent"),
    ("Calcified granuloma is again seen in the right upper lobe.", "Granuloma", "present"),
    ("Stable cardiomegaly.", "Cardiomegaly", "present"),
    # synonyms, abbreviations, plurals and misspellings come from the graph
    ("Small bilateral pleural effusions.", "PleuralEffusion", "present"),
    ("Tiny apical PTX.", "Pneumothorax", "present"),
    ("Bilateral pneumothoraces.", "Pneumothorax", "present"),
    ("Ground-glass opacities in both lower zones.", "GroundGlass", "present"),
    ("Costophrenic XXXX blunting on the right.", "BluntedCostophrenicAngle", "present"),
    ("The heart is mildly enlarged.", "Cardiomegaly", "present"),
    # a measurement is not a finding
    ("The highlighted region has mean density 18% higher than the left lung.", "Opacity", None),
    # issue 16: a negation ends at a conjunction followed by an affirmed finding (ConText), not in a bare list
    ("No cardiomegaly with bilateral small pleural effusions.", "PleuralEffusion", "present"),
    ("No cardiomegaly with bilateral small pleural effusions.", "Cardiomegaly", "absent"),
    ("No pneumothorax and small left effusion.", "PleuralEffusion", "present"),
    ("No focal consolidation, pneumothorax and pleural effusion.", "PleuralEffusion", "absent"),
    ("Possibly consistent with a tortuous aorta versus an anterior mediastinal mass.", "MediastinalWidening", "uncertain"),
    ("Differential considerations include infiltrate and mild pulmonary edema.", "PulmonaryEdema", "uncertain"),
    # descriptive synonyms of pneumothorax
    ("A large pleural air collection is present on the right.", "Pneumothorax", "present"),
    ("No pleural air collections.", "Pneumothorax", "absent"),
    ("Visceral pleural line at the left apex.", "Pneumothorax", "present"),
    # adjectives
    ("Mild nodular prominence of the right hilum.", "Nodule", "present"),
    ("Bilateral upper lobe fibronodular infiltrates.", "Nodule", "present"),
    ("Bilateral upper lobe fibronodular infiltrates.", "Infiltrate", "present"),
    ("The superior mediastinal contour is widened.", "MediastinalWidening", "present"),
    ("Widened mediastinum.", "MediastinalWidening", "present"),
    # differentials and considerations are uncertain
    ("Diagnostic considerations would include atelectasis or pneumonia.", "Pneumonia", "uncertain"),
    ("Diagnostic considerations would include atelectasis or pneumonia.", "Atelectasis", "uncertain"),
    ("Atypical infection is another consideration.", "ViralPattern", "uncertain"),
    # compound disease names are whole words: cystic fibrosis is not pulmonary fibrosis
    ("Changes of cystic fibrosis.", "Fibrosis", None),
    ("Changes of cystic fibrosis.", "CysticFibrosis", "present"),
    ("Interstitial fibrosis at both bases.", "Fibrosis", "present"),
    # aortic dissection and aneurysm are findings, never a normal study
    ("Findings concerning for aortic dissection.", "AorticDissection", "uncertain"),
    ("Findings concerning for aortic dissection.", "Normal", "absent"),
    ("Aneurysmal dilatation of the descending thoracic aorta.", "AorticAneurysm", "present"),
    # "lines" of the lungs are not lines and tubes
    ("Lung lines remain low.", "SupportDevice", None),
    ("Lung lines remain low.", "LowLungVolumes", "present"),
    ("Lines and tubes: not assessed by RadAssist.", "SupportDevice", None),
    ("Right PICC line with tip in the SVC.", "SupportDevice", "present"),
])
def test_sentence_level_labels(text, finding, expected):
    assert labels(f"FINDINGS: {text}").get(finding) == expected


def test_normal_statements_state_their_exclusions_absent():
    result = labels("FINDINGS: The heart is normal in size. The lungs are clear.\n\nIMPRESSION: No acute disease.")
    assert result["Normal"] == "present"
    assert result["Opacity"] == "absent" and result["Pneumonia"] == "absent"
    assert "ClearLungs" not in result  # a statement, not a finding


def test_a_finding_named_as_present_makes_the_study_abnormal_despite_otherwise_clear_lungs():
    result = labels("FINDINGS: Right lower lobe consolidation. The lungs are otherwise clear.")
    assert result["Consolidation"] == "present"
    assert result["Normal"] == "absent"


def test_present_outranks_uncertain_across_sections():
    result = labels("FINDINGS: Possible right basilar atelectasis.\n\nIMPRESSION: Right basilar atelectasis.")
    assert result["Atelectasis"] == "present"


def test_indication_is_not_read_as_a_finding():
    result = labels("INDICATION: Pneumonia?\nFINDINGS: The lungs are clear.")
    assert result["Pneumonia"] == "absent"  # from the clear lungs, not from the indication
    assert all(m.section != "INDICATION" for m in label_report("INDICATION: Pneumonia?").mentions)


def test_specific_diagnosis_names_the_general_one_and_rolls_up_to_model_labels():
    report = label_report("IMPRESSION: Viral pneumonia. Left lower lobe consolidation.")
    assert report.labels["ViralPneumonia"] == "present" and report.labels["Pneumonia"] == "present"
    assert report.model_labels == {"pneumonia": "present", "opacity": "present"}


def test_viral_and_bacterial_patterns_exclude_each_other_in_words():
    report = labels("IMPRESSION: The appearance favors a bacterial pattern rather than a viral pattern.")
    assert report["BacterialPattern"] == "present" and report["ViralPattern"] == "absent"


def test_sections_and_sentences_are_split():
    sections = split_sections("EXAM: Chest.\nFINDINGS: No effusion.\nIMPRESSION: 1. Normal. 2. No change.")
    assert [s.name for s in sections] == ["TECHNIQUE", "FINDINGS", "IMPRESSION"]
    assert split_sentences("1. Normal chest. 2. Stable 1.5 cm nodule.There is no effusion; mild cardiomegaly") == [
        "Normal chest", "Stable 1.5 cm nodule", "There is no effusion", "mild cardiomegaly"]
    assert [s.name for s in split_sections("No effusion.")] == ["FINDINGS"]


def test_output_is_json_ready_with_evidence():
    payload = label_report("FINDINGS: Possible small left effusion.").as_dict()
    mention = next(m for m in payload["mentions"] if m["finding"] == "PleuralEffusion")
    assert mention["status"] == "uncertain" and mention["trigger"] == "possible"
    assert payload["labels"]["PleuralEffusion"] == "uncertain"
