"""Does the saliency peak find the lesion? Peak inside the lesion, pointing game (within 15 px at 512)
and side agreement, for the CAM, the mirrored CAM and occlusion, each against a random point in the
lungs, with 95 % bootstrap CIs over patients (radassist.training.anatomy_localisation explains the
references and the metrics). Runs the installed models through the runtime path.

Usage: .venv/bin/python scripts/saliency_lesion_check.py ../shared/data [--out summary.json] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from radassist.inference.engine import load_model
from radassist.training.anatomy_localisation import find_references, format_table, score_all, summarise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="folder holding covid_cxr_seg/, nih14/ and jsrt/")
    parser.add_argument("--out", type=Path, help="also write the summary and per-image scores as JSON here")
    parser.add_argument("--limit", type=int, help="only the first N references of each source (a quick look)")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)
    references = find_references(args.data)
    if args.limit:
        references = [r for source in sorted({r.source for r in references})
                      for r in [r for r in references if r.source == source][:args.limit]]
    scores = list(score_all(references, "classifier", "lungseg"))
    summary = {"classifier": load_model("classifier").card.model_id, "lung_model": load_model("lungseg").card.model_id,
               **summarise(scores, args.seed)}
    print(f"classifier {summary['classifier']}, lung model {summary['lung_model']}")
    print(format_table(summary))
    if args.out:
        per_image = [{"image": s.reference.name, "label": s.label, "hit": s.hit, "pointing": s.pointing,
                      "side": s.side} for s in scores]
        args.out.write_text(json.dumps({"summary": summary, "images": per_image}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
