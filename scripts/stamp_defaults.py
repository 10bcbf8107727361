"""Write a model's default settings into its file (``info["defaults"]``, read by
``asr_ee.streaming.factory.build_recognizer``): what ``transcribe``, ``mic`` and the Python API use
with this model unless told otherwise. Keys: StreamingConfig keys (``max_exit_layer``,
``criterion``, ...) and ``lm``, the LM file's name next to the model (or null).
Usage: python scripts/stamp_defaults.py MODEL.pt '{"lm": "lm.pt", "max_exit_layer": 10}'"""

from __future__ import annotations

import json
import sys

from asr_ee.checkpoint import atomic_save, load_checkpoint
from asr_ee.streaming.factory import DEFAULTS_KEY, check_defaults


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, defaults = argv[0], check_defaults(json.loads(argv[1]))
    state = load_checkpoint(path)
    state.setdefault("info", {})[DEFAULTS_KEY] = defaults
    atomic_save(state, path)
    print(f"{path}: defaults {json.dumps(defaults)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
