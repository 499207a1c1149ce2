"""``python -m graphaudit``: the same command line as ``graphaudit`` (see :mod:`graphaudit.cli`)."""

import sys

from graphaudit.cli import main

sys.exit(main())
