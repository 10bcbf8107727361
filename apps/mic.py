#!/usr/bin/env python
"""Live microphone transcription with the exit layer, the load controller's cap and the CPU load
shown per chunk: ``asr-ee mic`` from a clone that is not installed. ``--help`` lists the options.

    python apps/mic.py                                  # default microphone, shipped model
    python apps/mic.py --list-devices
    python apps/mic.py --device 2 --save sessions/
    python apps/mic.py --input-file speech.wav --speed 4   # no microphone: a file at 4x real time

The program is ``asr_ee/micapp/`` (installed with the package); this file only makes the
repository importable and runs it.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from asr_ee.micapp.app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="python apps/mic.py"))
