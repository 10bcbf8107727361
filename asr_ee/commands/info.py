"""``asr-ee info``: parameters and compute per exit of a preset, YAML config or checkpoint, as JSON.

With no argument it describes the shipped model: where it is, its exits and compute, and the
defaults its file carries (exit ceiling, criterion, language model)."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register", "model_info"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameters, exit layers and FLOPs per exit as JSON")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", help="preset name (paper, small, tiny, ...-splitformer) or YAML")
    src.add_argument("--model", help="checkpoint or exported model (.pt; default: the shipped model)")
    p.add_argument("--context-frames", type=float, default=80.0,
                   help="frames each attention query sees (chunk + left context), for FLOPs")
    p.set_defaults(func=run)


def model_info(cfg, context_frames: float = 80.0) -> dict:
    from asr_ee.config import to_dict
    from asr_ee.models import build_encoder
    from asr_ee.models.flops import exit_costs

    model = build_encoder(cfg)
    total = sum(p.numel() for p in model.parameters())
    costs = exit_costs(cfg, context_frames)
    return {
        "arch": cfg.arch,
        "total_params": total,
        "exit_layers": list(cfg.exit_layers),
        "split_exit_layers": cfg.resolved_split_exit_layers(),
        "context_frames": context_frames,
        "exits": [{"exit_layer": c.exit_layer, "params": c.params, "gflops_per_audio_second": round(c.gflops_per_second, 4),
                   "compute_fraction": round(c.compute_fraction, 4)} for c in costs],
        "config": to_dict(cfg),
    }


def run(args: argparse.Namespace) -> int:
    from asr_ee.config import ConfigError
    from asr_ee.models import load_encoder_config

    extra: dict = {}
    try:
        if args.config:
            cfg = load_encoder_config(args.config)
        else:
            from asr_ee.checkpoint import CheckpointError, load_model
            from asr_ee.streaming.factory import model_file_defaults

            try:
                path, defaults = model_file_defaults(args.model)
                cfg = load_model(path)[0].cfg
            except CheckpointError as e:
                raise ConfigError(str(e)) from e
            lm = path.parent / defaults["lm"] if defaults.get("lm") else None
            extra = {"model": str(path), "defaults": defaults,
                     "lm": str(lm) if lm is not None and lm.is_file() else None}
    except (ConfigError, FileNotFoundError) as e:
        print(f"asr-ee info: {e}", file=sys.stderr)
        return 2
    print(json.dumps({**extra, **model_info(cfg, args.context_frames)}, indent=2))
    return 0
