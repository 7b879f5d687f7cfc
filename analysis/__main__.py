"""`python -m analysis`: hands the command line to analysis.cli."""

import sys

from analysis.cli import main

sys.exit(main())
