"""``python -m spanline …`` is the ``spanline`` command."""

import sys

from spanline.cli.main import main

sys.exit(main())
