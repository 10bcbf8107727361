"""Shared plumbing of the streaming benchmarks: arguments, model and test audio, tables.

Not a benchmark itself; ``streaming_rtf.py`` and ``streaming_load.py`` import it.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from asr_ee.checkpoint import CheckpointError
from asr_ee.inputs import InputError, Utterance, from_cuts
from asr_ee.config import ConfigError
from asr_ee.decoding.lm import NgramLM
from asr_ee.pretrained import DEFAULT_LM, Pretrained, load_pretrained, resolve_lm

__all__ = ["TestAudio", "add_common_args", "load_inputs", "load_lm_arg", "percentile", "print_table"]

REPO = Path(__file__).resolve().parents[1]


@dataclass
class TestAudio:
    utterance: Utterance
    samples: torch.Tensor  # (N,) 16 kHz

    @property
    def seconds(self) -> float:
        return self.samples.numel() / 16000


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="exported model or checkpoint (default: the shipped model)")
    parser.add_argument("--cuts", help="cut manifest with references (default: the test split of the "
                                       "model's training corpus)")
    parser.add_argument("--limit", type=int, help="use the first N cuts only")
    parser.add_argument("--lm", nargs="?", const="",
                        help="fuse a token LM in beam search (decoding becomes beam): PATH, or no value for the "
                             "shipped exp/small/lm.pt")
    parser.add_argument("--chunk-frames", type=int, default=8, help="encoder frames (40 ms) per chunk")
    parser.add_argument("--left-context-chunks", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")


def _default_cuts(pretrained: Pretrained) -> Path:
    data_dir = pretrained.info.get("train_config", {}).get("data", {}).get("data_dir")
    if data_dir:
        for base in (Path.cwd(), REPO):
            candidate = base / data_dir / "cuts_test.jsonl.gz"
            if candidate.is_file():
                return candidate
    sys.exit(f"no --cuts given and the model's training corpus ({data_dir!r}) has no cuts_test.jsonl.gz here")


def load_inputs(args: argparse.Namespace) -> tuple[Pretrained, list[TestAudio]]:
    torch.set_num_threads(max(1, args.threads))
    try:
        pretrained = load_pretrained(args.model)
        cuts = Path(args.cuts) if args.cuts else _default_cuts(pretrained)
        utterances = from_cuts(cuts)[: args.limit]
    except (CheckpointError, InputError) as e:
        sys.exit(f"error: {e}")
    audio = []
    for utt in utterances:
        try:
            audio.append(TestAudio(utt, utt.load()))
        except ValueError as e:
            print(f"skipping {utt.id}: {e}", file=sys.stderr)
    if not audio:
        sys.exit(f"error: no readable audio in {cuts}")
    print(f"model {pretrained.path} ({pretrained.encoder.cfg.arch}, exits at layers "
          f"{pretrained.encoder.cfg.exit_layers}); {len(audio)} utterances, "
          f"{sum(a.seconds for a in audio) / 60:.1f} min of audio from {cuts}")
    return pretrained, audio


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def load_lm_arg(args: argparse.Namespace, pretrained: Pretrained) -> NgramLM | None:
    """The LM ``--lm`` asks for (None without ``--lm``); exits with a message when it cannot be had."""
    if args.lm is None:
        return None
    try:
        lm = resolve_lm(args.lm or None, pretrained, required=True)
    except ConfigError as e:
        sys.exit(f"error: {e}")
    print(f"language model {args.lm or DEFAULT_LM} fused in beam search")
    return lm
