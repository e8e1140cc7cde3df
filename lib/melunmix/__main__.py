"""``python -m melunmix``: the ``melunmix`` command (:mod:`melunmix.cli`)."""

import sys

from .cli import main

sys.exit(main())
