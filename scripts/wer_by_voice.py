"""WER of one exit per TTS engine and base voice, from an `asr-ee evaluate` folder (its
`utterances.jsonl`, or `utterances.jsonl.gz` as in exp/small/eval/) and the cut
manifest it evaluated (whose supervisions carry `custom.engine` and `custom.base_voice`).

Usage: python scripts/wer_by_voice.py EVAL_DIR CUTS [--exit -1] [--decoding greedy] [--by engine|voice]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
from pathlib import Path

from asr_ee.data.datamodule import load_cuts
from asr_ee.decoding.wer import WordErrors, word_errors


def voice_of(cuts_path: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for cut in load_cuts(cuts_path):
        custom = cut.supervisions[0].custom or {}
        out[cut.id] = (custom.get("engine", "?"), custom.get("base_voice", "?"))
    return out


def wer_by(eval_dir: Path, cuts_path: Path, exit_index: int = -1, decoding: str = "greedy",
           by: str = "engine") -> dict[str, tuple[int, float]]:
    """group -> (reference words, WER %)."""
    voices = voice_of(cuts_path)
    groups: dict[str, WordErrors] = collections.defaultdict(WordErrors)
    plain = eval_dir / "utterances.jsonl"
    path = plain if plain.is_file() else eval_dir / "utterances.jsonl.gz"  # the shipped model's are gzipped
    with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path)) as f:
        lines = f.read().splitlines()
    for line in lines:
        utt = json.loads(line)
        if utt.get("reference") is None or utt["id"] not in voices:
            continue
        engine, base = voices[utt["id"]]
        group = engine if by == "engine" else f"{engine} {base}"
        groups[group] += word_errors(utt["reference"], utt["hypotheses"][decoding][exit_index])
    return {g: (groups[g].num_words, groups[g].wer) for g in sorted(groups)}


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
