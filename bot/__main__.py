"""Run `python -m bot` as `pqf-bot`."""

import sys

from bot.cli import main

sys.exit(main())
