"""`python -m vislib COMMAND ...`, the same as the console script `vislib`; see vislib/cli/."""
import sys

from vislib.cli import main

sys.exit(main())
