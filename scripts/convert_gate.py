"""Convert a legacy exit gate (``model.gate.pt``, written with torch.save before gates were JSON)
to the JSON file the recognizer reads on both backends (``model.gate.json`` beside it), and check
that the two give the same probabilities on random features. Needs torch (to read the old file).
Usage: python scripts/convert_gate.py exp/small/model.gate.pt [OUTPUT.json]"""

from __future__ import annotations

import sys

import numpy as np

from asr_ee.exits.gate import FEATURES, ExitGate, read_legacy_gate, convert_legacy_gate, load_gate


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    output = convert_legacy_gate(argv[0], argv[1] if len(argv) == 2 else None)
    old, new = ExitGate.from_dict(read_legacy_gate(argv[0])), load_gate(output)
    features = np.random.default_rng(0).normal(size=(256, len(FEATURES))).astype(np.float32)
    for k in range(len(old.exit_layers)):
        if not np.array_equal(old.probabilities(k, features), new.probabilities(k, features)):
            print(f"{output}: exit {k} gives other probabilities than {argv[0]}", file=sys.stderr)
            return 1
    same = old.calibration == new.calibration and old.info == new.info and old.fingerprint == new.fingerprint
    print(f"wrote {output} (fingerprint {new.fingerprint}, label {new.label}; probabilities identical, "
          f"calibration and info {'identical' if same else 'DIFFERENT'})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
