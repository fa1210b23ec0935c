"""``python -m dualsearch``: the same as the ``dualsearch`` command."""

import sys

from dualsearch.cli import main

sys.exit(main())
