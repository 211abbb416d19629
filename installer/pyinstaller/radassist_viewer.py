"""Frozen entry point of the windowed launcher (Windows Start menu, macOS .app): opens the viewer.

Built only for Windows and macOS (see radassist.spec), where a console executable would open a
terminal window beside the viewer. Files given on the command line (drag onto the icon) are opened.
"""

import multiprocessing
import sys

from radassist.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    files = [arg for arg in sys.argv[1:] if not arg.startswith("-psn_")]  # macOS adds a process serial number
    sys.exit(main(["view", *files]))
