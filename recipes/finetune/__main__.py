"""``python -m recipes.finetune SPEAKER_DIR OUT_DIR [...]``: see :mod:`recipes.finetune.run`."""

import sys

from recipes.finetune.run import main

sys.exit(main())
