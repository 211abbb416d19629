"""`python -m radassist.cli ...`: the same as the `radassist` command."""

import sys

from radassist.cli import main

sys.exit(main())
