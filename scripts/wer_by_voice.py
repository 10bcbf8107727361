"""WER of one exit per TTS engine and base voice (:func:`asr_ee.evaluation.by_voice.wer_by`), from an
`asr-ee evaluate` folder and the cut manifest it evaluated.

Usage: python scripts/wer_by_voice.py EVAL_DIR CUTS [--exit -1] [--decoding greedy] [--by engine|voice]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr_ee.evaluation.by_voice import wer_by


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("eval_dir", type=Path)
    p.add_argument("cuts", type=Path)
    p.add_argument("--exit", type=int, default=-1, help="exit index (default: the last)")
    p.add_argument("--decoding", default="greedy")
    p.add_argument("--by", choices=["engine", "voice"], default="engine")
    args = p.parse_args()
    print(f"| {args.by} | words | WER |\n|---|---:|---:|")
    for group, (n, wer) in wer_by(args.eval_dir, args.cuts, args.exit, args.decoding, args.by).items():
        print(f"| {group} | {n} | {wer:.1f} |")


if __name__ == "__main__":
    main()
