"""`python -m tfrec` runs the command line."""

import sys

from tfrec import cli

sys.exit(cli.main())
