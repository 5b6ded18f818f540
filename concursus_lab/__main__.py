import sys

from concursus_lab.cli import main

sys.exit(main())
