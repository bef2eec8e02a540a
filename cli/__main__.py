"""`python -m cti_journal.cli`: the console script without its wrapper (the demo starts its
processes this way, with the interpreter it runs under)."""

import sys

from cti_journal.cli.main import main

sys.exit(main())
