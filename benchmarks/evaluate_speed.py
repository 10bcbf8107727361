"""How fast ``asr-ee evaluate`` runs: utterances per second and real-time factor, per stage.

    .venv/bin/python benchmarks/evaluate_speed.py /work/data/offline_tts_small/cuts_test.jsonl.gz \
        [--model exp/small/model.pt] [--decoding greedy|beam|lm|both|greedy+lm|all] [--limit 200] [--threads 2]

Runs the full evaluation (features, one batched forward for all exits, every criterion and
threshold) and prints the stage times, the overall numbers and the encoder's measured real-time
factor up to each exit, as text or, with ``--json``, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import torch

from asr_ee.checkpoint import CheckpointError
from asr_ee.commands.evaluate import DECODING_CHOICES
from asr_ee.config import ConfigError
from asr_ee.evaluation import EvaluationConfig, evaluate
from asr_ee.inputs import InputError, from_cuts
from asr_ee.pretrained import load_pretrained, resolve_lm


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", help="lhotse cut manifest")
    p.add_argument("--model", help="exported model or checkpoint (default: the shipped model)")
    p.add_argument("--decoding", choices=sorted(DECODING_CHOICES), default="greedy")
    p.add_argument("--beam", type=int, default=8)
    p.add_argument("--batch-seconds", type=float, default=120.0)
    p.add_argument("--chunk-frames", type=int, default=8)
    p.add_argument("--limit", type=int, help="first N utterances only")
    p.add_argument("--threads", type=int, help="torch threads (default: every core)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--lm", help="LM for the 'lm' decodings (default: the shipped one with the shipped model)")
    return p.parse_args(argv)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    pretrained = load_pretrained(args.model)
    utterances = from_cuts(args.manifest)[: args.limit]
    cfg = EvaluationConfig(decodings=DECODING_CHOICES[args.decoding], beam=args.beam,
                           batch_seconds=args.batch_seconds, chunk_frames=args.chunk_frames)
    lm = resolve_lm(args.lm, pretrained, required=True) if "lm" in cfg.decodings else None
    summary = evaluate(pretrained.encoder, pretrained.tokenizer, utterances, cfg, lm=lm).summary
    first = summary["settings"]["decodings"][0]
    return {"model": str(pretrained.path), "manifest": args.manifest, "utterances": summary["num_evaluated"],
            "failed": summary["num_failed"], "decodings": summary["settings"]["decodings"],
            "policies": len(summary["policies"]), **summary["timing"],
            "encoder_rtf_to_exit": {str(r["exit_layer"]): r["real_time_factor"]
                                    for r in summary["per_exit"] if r["decoding"] == first}}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        report = benchmark(args)
    except (CheckpointError, ConfigError, InputError, ValueError) as e:
        print(f"evaluate_speed: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['utterances']} utterances ({report['audio_seconds']:.1f} s of audio), "
          f"{report['torch_threads']} threads, decoding {'+'.join(report['decodings'])}, "
          f"{report['policies']} policy rows")
    print(f"  features {report['features_seconds']:.2f} s, encoder {report['encoder_seconds']:.2f} s, "
          f"decoding and selection {report['decode_seconds']:.2f} s, total {report['total_seconds']:.2f} s")
    print(f"  {report['utterances_per_second']:.2f} utterances/s, real-time factor {report['real_time_factor']:.4f}")
    print("  encoder RTF to exit: " + ", ".join(f"L{k} {v:.4f}" for k, v in report["encoder_rtf_to_exit"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
