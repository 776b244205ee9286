"""`python -m promptxray.cli`: the `promptxray` command."""

import sys

from promptxray.cli.main import main

sys.exit(main())
