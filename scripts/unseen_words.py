"""How often a model gets wrong the words it heard in training, and the words it never heard.

Aligns each reference of an evaluation (``utterances.jsonl[.gz]``) with the hypothesis at one
exit (kaldialign) and counts, per reference word, whether it was recognized (aligned to itself) or
not (substituted or deleted); insertions belong to no reference word and are left out. Words are
split by whether any training transcript (``--train-cuts``, or sentence lists: ``--train-text``)
holds them; with ``--new-cuts`` (a further training source: a new stage's corpus) a third group
counts the words only it holds: did a model learn the words that source brought?

    python scripts/unseen_words.py EVAL_SPLIT_DIR... --train-cuts DATA/cuts_train.jsonl.gz ... \
        [--train-text SENTENCES.txt ...] [--new-cuts WIDE/cuts_train_wide.jsonl.gz] [--decoding lm] [--exit-index -1]
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


def text_words(text_files: Iterable[Path]) -> set[str]:
    return {w for f in text_files for line in f.read_text().splitlines() for w in line.split()}


def word_outcomes(split_dir: Path, known: set[str], decoding: str, exit_index: int,
                  new: set[str] = frozenset()) -> dict[str, list[int]]:
    """{"training": [words, wrong], "new": [...], "other": [...]} over the split's reference words
    ("new": words of ``new`` that ``known`` lacks)."""
    counts = {"training": [0, 0], "new": [0, 0], "other": [0, 0]}
    for utt in read_utterances(split_dir):
        if utt.get("reference") is None:
            continue
        hypothesis = utt["hypotheses"][decoding][exit_index].split()
        for ref, hyp in kaldialign.align(utt["reference"].split(), hypothesis, "*"):
            if ref == "*":
                continue
            bucket = counts["training" if ref in known else "new" if ref in new else "other"]
            bucket[0] += 1
            bucket[1] += ref != hyp
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("splits", type=Path, nargs="+", help="evaluation output folders (asr-ee evaluate --output-dir)")
    p.add_argument("--train-cuts", type=Path, action="append", default=[],
                   help="a training manifest (repeat for every one the model trained on)")
    p.add_argument("--train-text", type=Path, action="append", default=[],
                   help="training sentences, one per line (a manifest that is not at hand)")
    p.add_argument("--new-cuts", type=Path, action="append", default=[],
                   help="a further training manifest whose own words get a column of their own")
    p.add_argument("--decoding", default="lm")
    p.add_argument("--exit-index", type=int, default=-1)
    args = p.parse_args(argv)
    if not args.train_cuts and not args.train_text:
        p.error("give the training transcripts: --train-cuts and/or --train-text")
    known = training_words(args.train_cuts) | text_words(args.train_text)
    new = training_words(args.new_cuts) - known
    print(f"{len(known):,} distinct words in the training transcripts"
          + (f", {len(new):,} more only in {', '.join(str(f) for f in args.new_cuts)}" if args.new_cuts else "")
          + f"; {args.decoding}, exit index {args.exit_index}")
    groups = ["training", "new", "other"] if args.new_cuts else ["training", "other"]
    names = {"training": "words heard in training", "new": "words only the new source holds", "other": "other words"}
    print("| split | " + " | ".join(f"{names[g]} | wrong" for g in groups) + " |\n|---|" + "---:|---:|" * len(groups))
    for split in args.splits:
        c = word_outcomes(split, known, args.decoding, args.exit_index, new)
        cells = [f"{c[g][0]:,} | {100.0 * c[g][1] / c[g][0]:.1f}%" if c[g][0] else "0 | -" for g in groups]
        print(f"| {split.name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
