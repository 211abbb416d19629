"""`radassist models list|activate CARD|rollback TASK`: choose which model version the hosts use."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="bundled and fine-tuned versions, the active one marked with *")
    activate = sub.add_parser("activate", help="make a version active (it is never done automatically)")
    activate.add_argument("card", help="path of the version's .card.json (from `models list`)")
    rollback = sub.add_parser("rollback", help="return to the previously active version")
    rollback.add_argument("task", nargs="?", default="classifier", choices=["classifier", "lungseg"])


def run(args: argparse.Namespace) -> int:
    from radassist.inference import registry

    if args.action == "list":
        for v in registry.list_versions():
            origin = "bundled" if v.bundled else "fine-tuned"
            print(f"{'*' if v.active else ' '} {v.task:<10} {v.model_id:<36} {v.version:<10} {origin:<10} {v.card_path}")
    elif args.action == "activate":
        version = registry.activate(args.card)
        print(f"active {version.task} model: {version.model_id} {version.version}")
    else:
        print(f"active {args.task} model card: {registry.rollback(args.task)}")
    return 0
