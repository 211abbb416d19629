"""`radassist demo`: the viewer on the bundled, licensed sample radiographs with the bundled model.

On a machine without a display (and no QT_QPA_PLATFORM chosen) it renders offscreen, writes a
screenshot and says where, instead of failing to open a window.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from radassist.paths import resources_dir, user_data_dir


def samples_dir() -> Path:
    return resources_dir() / "samples"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="save the window after the first read and exit (default when there is no display: "
                             "demo-screenshot.png in the user-data folder)")
    parser.add_argument("--no-record", action="store_true",
                        help="do not record decisions and edits in the feedback store")


def run(args: argparse.Namespace) -> int:
    from radassist.errors import InputRefused
    from radassist.gui.app import headless, run_viewer

    folder = samples_dir()
    if not folder.is_dir() or not any(p.is_file() and not p.name.endswith(".md") for p in folder.iterdir()):
        raise InputRefused(f"the sample radiographs are missing from {folder}; reinstall RadAssist")
    screenshot = args.screenshot
    if screenshot is None and headless():
        screenshot = str(user_data_dir() / "demo-screenshot.png")
        print("radassist demo: no display found; rendering offscreen instead of opening a window")
    code = run_viewer([str(folder)], record=not args.no_record, screenshot=screenshot)
    if screenshot:
        print(f"screenshot written to {Path(screenshot).resolve()}")
    return code
