"""Run `python -m admin` as `pqf-bot`."""

import sys

from admin.cli import main

sys.exit(main())
