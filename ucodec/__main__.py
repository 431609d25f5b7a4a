"""``python -m ucodec ...``: the same program as the ``ucodec`` console script."""

import sys

from ucodec.cli import main

sys.exit(main())
