"""``asr-ee train``: train an early-exit encoder from a YAML config (see recipes/*/conf/)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an early-exit Conformer/Splitformer (torchrun for DDP)",
                       description="Train from a YAML TrainConfig. Overrides: key.sub=value, e.g. "
                                   "optim.peak_lr=1e-3 data.max_duration=60.")
    p.add_argument("--config", required=True, help="training YAML (recipes/<corpus>/conf/train_*.yaml)")
    p.add_argument("--exp-dir", required=True, help="run directory: checkpoints, logs, tensorboard")
    p.add_argument("--data-dir", help="override data.data_dir")
    p.add_argument("--resume", action="store_true", help="continue the run in --exp-dir from its last checkpoint")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from asr_ee.checkpoint import CheckpointError
    from asr_ee.config import ConfigError, apply_overrides, load_yaml
    from asr_ee.training import TrainConfig, train

    logging.basicConfig(level=logging.WARNING)
    try:
        cfg = load_yaml(TrainConfig, args.config)
        overrides = list(args.overrides) + ([f"data.data_dir={args.data_dir}"] if args.data_dir else [])
        cfg = apply_overrides(cfg, overrides)
        last = train(cfg, args.exp_dir, resume=args.resume)
    except (ConfigError, CheckpointError, OSError) as e:
        hint = " (run `asr-ee prepare` first?)" if isinstance(e, FileNotFoundError) else ""
        print(f"asr-ee train: {e}{hint}", file=sys.stderr)
        return 2
    print(f"last checkpoint: {last}")
    return 0
