"""Two models on the same utterances, with a 95% paired bootstrap interval: is B's WER really lower?

For every split both evaluation folders hold (``asr-ee evaluate ... --output-dir A/eval/SPLIT`` and
the same for B), prints the last exit's WER of each model and B's relative change against A with
its interval (utterances resampled with replacement, the same draws for both models:
:func:`asr_ee.evaluation.summary.relative_change_ci`). An interval that holds 0 is a difference the
split cannot resolve. Utterances are matched by id; a split whose ids differ is refused.

    python scripts/compare_evals.py A/eval B/eval [--decoding lm] [--exit-index -1] [--splits dev,test]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr_ee.evaluation.report import read_utterances
from asr_ee.evaluation.summary import relative_change_ci


def utterance_errors(split_dir: Path, decoding: str, exit_index: int) -> dict[str, tuple[int, int]]:
    """id -> (word errors at the exit, reference words) from the split's ``utterances.jsonl[.gz]``."""
    out = {}
    for utt in read_utterances(split_dir):
        if utt.get("reference") is None:
            continue
        if decoding not in utt["word_errors"]:
            raise SystemExit(f"{split_dir}: no {decoding!r} decoding (has {sorted(utt['word_errors'])})")
        out[utt["id"]] = (utt["word_errors"][decoding][exit_index], len(utt["reference"].split()))
    return out


def compare(a: Path, b: Path, split: str, decoding: str, exit_index: int) -> str:
    ea, eb = (utterance_errors(d / split, decoding, exit_index) for d in (a, b))
    if ea.keys() != eb.keys():
        raise SystemExit(f"{split}: the two evaluations hold different utterances ({len(ea)} and {len(eb)})")
    ids = sorted(ea)
    words = sum(ea[i][1] for i in ids)
    errors_a, errors_b = [ea[i][0] for i in ids], [eb[i][0] for i in ids]
    wer_a, wer_b = 100.0 * sum(errors_a) / words, 100.0 * sum(errors_b) / words
    change = relative_change_ci(errors_b, errors_a)
    text = "-" if change is None else f"{change[0]:+.1f}% [{change[1]:+.1f}, {change[2]:+.1f}]"
    return f"| {split} | {len(ids)} | {words} | {wer_a:.2f} | {wer_b:.2f} | {text} |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path, help="evaluation folder of model A (holding SPLIT/utterances.jsonl.gz)")
    p.add_argument("b", type=Path, help="the same for model B")
    p.add_argument("--decoding", default="lm")
    p.add_argument("--exit-index", type=int, default=-1, help="exit to compare (default: the last)")
    p.add_argument("--splits", default=None, help="comma-separated (default: every split both hold)")
    args = p.parse_args(argv)
    for folder in (args.a, args.b):
        if not folder.is_dir():
            hint = f" (a split's folder? give its parent, {folder.parent.parent})" if folder.name == "results.json" else ""
            print(f"{folder} is not an evaluation folder: give the folder that holds one folder per split, as "
                  f"`asr-ee evaluate ... --output-dir DIR/SPLIT` writes them{hint}", file=sys.stderr)
            return 2
    found = [d.name for d in sorted(args.a.iterdir())
             if (d / "utterances.jsonl.gz").is_file() or (d / "utterances.jsonl").is_file()]
    splits = args.splits.split(",") if args.splits else [s for s in found if (args.b / s).is_dir()]
    if not splits:
        print(f"no split evaluated in both {args.a} and {args.b}", file=sys.stderr)
        return 2
    print(f"A = {args.a}, B = {args.b}; {args.decoding}, exit index {args.exit_index}; "
          "B against A, 95% paired bootstrap interval")
    print("| split | utterances | words | WER A | WER B | B vs A |\n|---|---:|---:|---:|---:|---:|")
    for split in splits:
        print(compare(args.a, args.b, split, args.decoding, args.exit_index))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
