"""``python -m simclr`` (also what ``torchrun -m simclr`` runs)."""

import sys

from simclr.cli.main import main

sys.exit(main())
