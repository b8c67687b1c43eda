"""``python -m shattering`` is ``shatter``."""

import sys

from .cli import main

sys.exit(main())
