"""``python -m export.translation --from <HF model dir> --out <pack>`` (the same as ``python -m export translation``)."""

import sys

from export.translation.cli import main

sys.exit(main())
