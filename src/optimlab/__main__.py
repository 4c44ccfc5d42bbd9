"""``python -m optimlab`` runs the command line."""

import sys

from optimlab.cli import main

sys.exit(main())
