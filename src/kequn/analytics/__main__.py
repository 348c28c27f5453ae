"""Run ``python -m kequn.analytics FILE --out DIR``."""

import sys

from .cli import main

sys.exit(main())
