"""`python -m vislib COMMAND ...`; see vislib/cli.py."""
import sys

from .cli import main

sys.exit(main())
