"""Interpolate two exported models of one architecture, weight by weight (WiSE-FT: Wortsman et al.,
"Robust fine-tuning of zero-shot models", 2022): ``alpha`` of the fine-tuned model plus
``1 - alpha`` of the model it was fine-tuned from, BatchNorm statistics included. Keeps the
fine-tuned model's tokenizer, config and info (its defaults) and records the recipe in ``info``.
The two may differ in their dropout rate (no weight depends on it), nothing else.
Usage: python scripts/interpolate_models.py FINETUNED.pt BASE.pt ALPHA OUT.pt"""

from __future__ import annotations

import sys

from asr_ee.checkpoint import CheckpointError, atomic_save, load_checkpoint
from asr_ee.models.config import weight_layout_differences


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    tuned_path, base_path, alpha, out = argv[0], argv[1], float(argv[2]), argv[3]
    if not 0.0 <= alpha <= 1.0:
        print(f"alpha must be in [0, 1], got {alpha}", file=sys.stderr)
        return 2
    tuned, base = load_checkpoint(tuned_path), load_checkpoint(base_path)
    if weight_layout_differences(tuned["encoder_config"], base["encoder_config"]) or tuned["model"].keys() != base["model"].keys():
        raise CheckpointError(f"{tuned_path} and {base_path} are not the same architecture")
    weights = {}
    for name, value in tuned["model"].items():
        other = base["model"][name]
        if value.is_floating_point():
            weights[name] = (alpha * value.float() + (1.0 - alpha) * other.float()).to(value.dtype)
        else:
            weights[name] = value  # integer buffers (e.g. BatchNorm's batch counter): the fine-tuned one
    info = dict(tuned.get("info", {}))
    info["interpolated"] = {"finetuned": str(tuned_path), "base": str(base_path), "alpha": alpha}
    atomic_save({**tuned, "model": weights, "info": info}, out)
    print(f"{out}: {alpha:g} x {tuned_path} + {1 - alpha:g} x {base_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
