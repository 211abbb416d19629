"""Does the saliency peak find the lesion? Peak inside the lesion, pointing game (within 15 px at 512)
and side agreement per saliency method, each against a random point in the lungs, with 95 % bootstrap
CIs over patients (radassist.training.anatomy_localisation explains the references, methods and metrics).
Runs the installed models through the runtime path.

Held out: the anatomy model's lesion output was trained on covid_cxr_seg and jsrt, so from those sources
only the images of its validation split (the card's `training.validation_images`) are scored; the NIH
boxes were never trained on and are all scored.

Usage: .venv/bin/python scripts/saliency_lesion_check.py ../shared/data [--out scores.json] [--no-occlusion]
       [--update-card]   (writes the summary into the anatomy model's card and regenerates its note)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from radassist.inference.engine import load_model
from radassist.training.anatomy_localisation import find_references, format_table, score_all, summarise
from radassist.training.lungseg_data import CXR_SEG, JSRT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="folder holding covid_cxr_seg/, nih14/ and jsrt/")
    parser.add_argument("--out", type=Path, help="also write the summaries and per-image scores as JSON here")
    parser.add_argument("--no-occlusion", action="store_true", help="skip occlusion (64 forward passes an image)")
    parser.add_argument("--all-images", action="store_true",
                        help="also score covid_cxr_seg/jsrt images the anatomy model was trained on")
    parser.add_argument("--update-card", action="store_true",
                        help="write the summary into the anatomy model's card (`localisation`) and its note")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)
    lung_card = load_model("lungseg").card
    references = find_references(args.data)
    if not args.all_images:
        held_out = set(lung_card.data.get("training", {}).get("validation_images", []))
        references = [r for r in references if r.source not in (CXR_SEG, JSRT) or r.name in held_out]
    scores = list(score_all(references, "classifier", "lungseg", occlusion=not args.no_occlusion))
    print(f"classifier {load_model('classifier').card.model_id}, anatomy model {lung_card.model_id}")
    summaries = {"all": summarise(scores, args.seed)}
    for source in sorted({s.reference.source for s in scores}):
        summaries[source] = summarise([s for s in scores if s.reference.source == source], args.seed)
    for name, summary in summaries.items():
        print(f"\n== {name}\n{format_table(summary)}")
    if args.update_card:
        update_card(lung_card.path, summaries, load_model("classifier").card.model_id)
    if args.out:
        per_image = [{"image": s.reference.name, "label": s.label, "hit": s.hit, "pointing": s.pointing,
                      "side": s.side} for s in scores]
        args.out.write_text(json.dumps({"summaries": summaries, "images": per_image}, indent=1), encoding="utf-8")
    return 0


def update_card(card_path: Path, summaries: dict, classifier: str) -> None:
    from radassist.training.lungseg_train import write_model_note

    card = json.loads(card_path.read_text(encoding="utf-8"))
    overall = summaries["all"]
    shown = "lesion" if "lesion" in overall["methods"] else "cam"  # what a read shows for a finding in the lungs
    parts = []
    for metric, name in (("hit", "peak in lesion"), ("pointing", "pointing game"), ("side", "side agreement")):
        entry = overall["metrics"][metric]
        parts.append(f"{name} {entry[shown]['mean']:.2f} (95 % CI {entry[shown]['ci95'][0]:.2f}-"
                     f"{entry[shown]['ci95'][1]:.2f}) vs random point in lung {entry['random']['mean']:.2f}, "
                     f"classifier CAM alone {entry['cam']['mean']:.2f}")
    named, right = overall["metrics"]["side_named"][shown], overall["metrics"]["side_when_named"][shown]
    parts.append(f"a side is named on {named['mean']:.0%} of the films and is then right {right['mean']:.2f} "
                 f"(95 % CI {right['ci95'][0]:.2f}-{right['ci95'][1]:.2f}, n={right['n']})")
    card["localisation"] = {
        "classifier": classifier, "method": shown, "summaries": summaries,
        "text": f"{shown} saliency on {overall['images']} held-out images "
                f"({overall['by_source']}): " + "; ".join(parts) + ". The lesion smoothing and the share of evidence that names a side "
                "(radassist.explain.saliency) were chosen on these references; the held-out split judges them "
                "(scripts/saliency_lesion_check.py)."}
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    write_model_note(card_path.with_name(card_path.name.replace(".card.json", ".md")), card)


if __name__ == "__main__":
    sys.exit(main())
