"""``python -m search``: the same as the ``dualsearch`` command."""

import sys

from search.cli import main

sys.exit(main())
