"""``python -m concursus_lab``: the ``concursus-lab`` command line."""

import sys

from concursus_lab.cli import main

sys.exit(main())
