"""``python -m asr_ee``: the ``asr-ee`` command line."""

import sys

from asr_ee.cli import main

if __name__ == "__main__":
    sys.exit(main())
