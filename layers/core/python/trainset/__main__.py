"""Entry point for ``python -m trainset``."""

import sys

from trainset.cli import main

sys.exit(main())
