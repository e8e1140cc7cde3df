"""``python -m melunmix``: the ``melunmix`` command (:mod:`melunmix.commands.cli`)."""

import sys

from .commands.cli import main

sys.exit(main())
