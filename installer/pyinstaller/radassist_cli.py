"""Frozen entry point of the bundle's `radassist` executable: the same CLI as the pip console script."""

import multiprocessing
import sys

from radassist.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # `radassist batch` starts worker processes from this executable
    sys.exit(main())
