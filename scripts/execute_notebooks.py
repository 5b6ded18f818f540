"""Deprecated shim: use `concursus-lab check --update NOTEBOOK...`."""

import sys

from concursus_lab._check import update

sys.exit(update(sys.argv[1:]))
