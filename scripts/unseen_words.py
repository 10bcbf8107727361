"""How often a model gets wrong the words it heard in training, and the words it never heard.

Aligns each reference of an evaluation (``utterances.jsonl[.gz]``) with the hypothesis at one
exit (kaldialign) and counts, per reference word, whether it was recognized (aligned to itself) or
not (substituted or deleted); insertions belong to no reference word and are left out. Words are
split by whether any training transcript (``--train-cuts``) holds them.

    python scripts/unseen_words.py EVAL_SPLIT_DIR... --train-cuts DATA/cuts_train.jsonl.gz ... \
        [--decoding lm] [--exit-index -1]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable

import kaldialign

from asr_ee.evaluation.report import read_utterances


def training_words(cut_files: Iterable[Path]) -> set[str]:
    from lhotse import CutSet

    return {w for f in cut_files for c in CutSet.from_file(f) for s in c.supervisions for w in s.text.split()}


def word_outcomes(split_dir: Path, known: set[str], decoding: str, exit_index: int) -> dict[str, list[int]]:
    """{"training": [words, wrong], "other": [words, wrong]} over the split's reference words."""
    counts = {"training": [0, 0], "other": [0, 0]}
    for utt in read_utterances(split_dir):
        if utt.get("reference") is None:
            continue
        hypothesis = utt["hypotheses"][decoding][exit_index].split()
        for ref, hyp in kaldialign.align(utt["reference"].split(), hypothesis, "*"):
            if ref == "*":
                continue
            bucket = counts["training" if ref in known else "other"]
            bucket[0] += 1
            bucket[1] += ref != hyp
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("splits", type=Path, nargs="+", help="evaluation output folders (asr-ee evaluate --output-dir)")
    p.add_argument("--train-cuts", type=Path, action="append", required=True,
                   help="a training manifest (repeat for every one the model trained on)")
    p.add_argument("--decoding", default="lm")
    p.add_argument("--exit-index", type=int, default=-1)
    args = p.parse_args(argv)
    known = training_words(args.train_cuts)
    print(f"{len(known):,} distinct words in the training transcripts; {args.decoding}, exit index {args.exit_index}")
    print("| split | words heard in training | wrong | other words | wrong |\n|---|---:|---:|---:|---:|")
    for split in args.splits:
        c = word_outcomes(split, known, args.decoding, args.exit_index)
        cells = [f"{n:,} | {100.0 * w / n:.1f}%" if n else "0 | -" for n, w in (c["training"], c["other"])]
        print(f"| {split.name} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
