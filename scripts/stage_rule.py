"""The shipping rule of a training stage (issue 15), as a table: per candidate evaluation folder, the
last exit's WER (greedy / beam + LM, full context) per split, the mean + LM WER over the unseen-voice
splits, and which candidate the rule picks: the lowest mean among those whose synthetic test WER + LM
is at most ``--test-limit`` (the base model's 7.40% + 10%).

    python scripts/stage_rule.py exp/small/eval/ablation_stage6/{a_before,c6_raw,c6_i,n6_raw,n6_i} \
        [--unseen test_heldout_voices,natural,kokoro_heldout,wide_kokoro,wide_natural] [--extra hibari_heldout]

Each folder holds ``SPLIT/results.json`` from ``asr-ee evaluate ... --decoding greedy+lm``. ``--extra``
splits are shown but not in the rule (a voice some candidates trained on).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

UNSEEN = "test_heldout_voices,natural,kokoro_heldout,wide_kokoro,wide_natural"


def last_wer(folder: Path, split: str) -> tuple[float, float] | None:
    path = folder / split / "results.json"
    if not path.is_file():
        return None
    per_exit = json.loads(path.read_text())["per_exit"]
    last = {d: [e["wer"] for e in per_exit if e["decoding"] == d][-1] for d in ("greedy", "lm")}
    return last["greedy"], last["lm"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", type=Path, help="evaluation folders, one per candidate model")
    parser.add_argument("--unseen", default=UNSEEN, help="comma-separated splits the rule averages")
    parser.add_argument("--extra", default="", help="comma-separated splits shown, not in the rule")
    parser.add_argument("--test-limit", type=float, default=8.14, help="the highest synthetic test WER + LM allowed")
    args = parser.parse_args(argv)
    unseen = [s for s in args.unseen.split(",") if s]
    extra = [s for s in args.extra.split(",") if s]
    splits = ["test", *unseen, *extra]
    rows, eligible = [], {}
    for folder in args.candidates:
        if not folder.is_dir():
            print(f"error: {folder} is not an evaluation folder", file=sys.stderr)
            return 2
        wers = {s: last_wer(folder, s) for s in splits}
        missing = [s for s in ["test", *unseen] if wers[s] is None]
        cells = [f"{w[0]:.2f}/{w[1]:.2f}" if w else "-" for w in wers.values()]
        if missing:
            rows.append(f"{folder.name} | " + " | ".join(cells) + f" | missing {','.join(missing)}")
            continue
        mean_lm = sum(wers[s][1] for s in unseen) / len(unseen)
        mean_greedy = sum(wers[s][0] for s in unseen) / len(unseen)
        ok = wers["test"][1] <= args.test_limit
        if ok:
            eligible[folder.name] = mean_lm
        rows.append(f"{folder.name} | " + " | ".join(cells) + f" | {mean_lm:.2f} | {mean_greedy:.2f}"
                    + ("" if ok else f" | test > {args.test_limit}"))
    print(f"candidate | {' | '.join(splits)} | mean{len(unseen)} LM | greedy mean{len(unseen)}   (greedy/LM WER %, last exit)")
    print("\n".join(rows))
    if eligible:
        best = min(eligible, key=eligible.get)
        print(f"rule: ship {best} (mean + LM {eligible[best]:.2f} over {', '.join(unseen)}; test + LM <= {args.test_limit})")
    else:
        print("rule: no candidate is complete and within the test limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
