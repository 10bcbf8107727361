"""``asr-ee average``: average the weights of a run's last K checkpoints (and optionally export)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("average", help="average the last K checkpoints of a run")
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--last", type=int, default=5, help="how many of the newest checkpoints")
    p.add_argument("--output", required=True, help="where to write the averaged checkpoint")
    p.add_argument("--export", action="store_true",
                   help="write a self-contained float16 inference model (config + weights + tokenizer)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr_ee.checkpoint import CheckpointError, atomic_save, average_checkpoints, export_model, list_checkpoints

    if args.last < 1:
        print(f"asr-ee average: --last must be >= 1, got {args.last}", file=sys.stderr)
        return 2
    paths = list_checkpoints(Path(args.exp_dir) / "checkpoints")[-args.last:]
    try:
        avg = average_checkpoints(paths)
        if args.export:
            data = avg["train_config"]["data"]
            tokenizer = Path(data["data_dir"]) / data["tokenizer"]
            export_model(avg, tokenizer, args.output, half=True,
                         extra={"averaged_from": [p.name for p in paths], "train_config": avg["train_config"],
                                "run": avg.get("run", {})})
        else:
            atomic_save(avg, args.output)
    except (CheckpointError, OSError) as e:
        print(f"asr-ee average: {e}", file=sys.stderr)
        return 2
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) -> {args.output}")
    return 0
