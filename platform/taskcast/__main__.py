"""``python -m taskcast``: see ``taskcast.cli``."""

import sys

from .cli import main

sys.exit(main())
