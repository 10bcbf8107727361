"""Does calibrating each exit's posteriors close the gap between a per-chunk policy and the last exit
under beam search + LM? (Issue 20: the chunk oracle's frames equal the last exit's, yet it costs
+6.6% with the LM: the beam reads more than the best path.)

A chunk decided at a shallow exit hands the beam that exit's posteriors, flatter than the last
exit's, beside chunks of deeper exits: against one LM weight, the LM speaks louder in the shallow
chunks. Here each exit k gets a temperature T_k (``log_softmax(lp_k / T_k)``), fitted on the fit
split so that its posteriors come closest to the last exit's (mean KL(last || exit k) per frame,
grid search), and the evaluation's spliced posteriors use it; the per-exit rows (fixed exits) are not
touched. Then the same evaluation (chunk mask, beam + LM) with and without the temperatures.

    python benchmarks/exit_calibration.py --model exp/small/model.pt --fit DATA/cuts_dev.jsonl.gz \
        --cuts DATA/cuts_test.jsonl.gz [--thresholds 0.85,0.9,0.93] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asr_ee.evaluation.scoring as scoring  # noqa: E402
from asr_ee.commands.train_gate import read_as_streams_end  # noqa: E402
from asr_ee.evaluation import EvaluationConfig, evaluate  # noqa: E402
from asr_ee.evaluation.batching import duration_batches, forward_exits  # noqa: E402
from asr_ee.exits.gate import find_gate, load_gate  # noqa: E402
from asr_ee.inputs import from_cuts  # noqa: E402
from asr_ee.pretrained import load_pretrained, resolve_lm  # noqa: E402

GRID = np.round(np.arange(0.5, 2.51, 0.05), 2)


def fit_temperatures(encoder, utterances, cfg: EvaluationConfig, max_frames: int = 60000) -> list[float]:
    """Per exit, the temperature whose posteriors are closest to the last exit's (mean KL per frame)."""
    items, _ = read_as_streams_end(utterances)
    per_exit: list[list[torch.Tensor]] = [[] for _ in range(encoder.num_exits)]
    frames = 0
    with torch.inference_mode():
        for batch in duration_batches(items, cfg.batch_seconds):
            for exit_lps in forward_exits(encoder, batch, cfg):
                for k, lp in enumerate(exit_lps):
                    per_exit[k].append(lp)
                frames += exit_lps[0].size(0)
            if frames >= max_frames:
                break
    lps = [torch.cat(x) for x in per_exit]
    return [best_temperature(lps[-1], lp) for lp in lps[:-1]] + [1.0]


def best_temperature(last: torch.Tensor, lp: torch.Tensor) -> float:
    """The grid temperature T minimizing the mean KL(last || log_softmax(lp / T)) over (T', V) frames."""
    p_last = last.exp()
    kls = [float((p_last * (last - torch.log_softmax(lp / t, dim=-1))).sum(-1).mean()) for t in GRID]
    return float(GRID[int(np.argmin(kls))])


def calibrated_splice(temps: list[float]):
    original = scoring.splice_posteriors

    def splice(exit_lps, exits, bounds):
        return original([torch.log_softmax(lp / t, dim=-1) if t != 1.0 else lp for lp, t in zip(exit_lps, temps)],
                        exits, bounds)
    return splice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("exp/small/model.pt"))
    parser.add_argument("--fit", type=Path, required=True, help="cuts the temperatures are fitted on (dev)")
    parser.add_argument("--cuts", type=Path, required=True, help="cuts evaluated (test)")
    parser.add_argument("--thresholds", default="0.85,0.9,0.93")
    parser.add_argument("--lm", type=Path, default=Path("exp/small/lm.pt"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--temperatures", default=None, help="comma-separated, one per exit: used instead of fitting")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pretrained = load_pretrained(args.model, None)
    encoder = pretrained.encoder.eval()
    lm = resolve_lm(args.lm, pretrained, required=True)
    gate = load_gate(find_gate(pretrained.path), encoder)
    cfg = EvaluationConfig(decodings=["lm"], attention="chunk", chunk_frames=8, left_context_chunks=4,
                           criteria=["gate", "oracle"],
                           thresholds={"gate": [float(t) for t in args.thresholds.split(",")]})
    if args.temperatures:
        temps = [float(t) for t in args.temperatures.split(",")]
        print(f"temperatures per exit (given): {temps}")
    else:
        temps = fit_temperatures(encoder, from_cuts(args.fit), cfg)
        print(f"temperatures per exit (fitted on {args.fit.name}): {temps}")
    utterances = from_cuts(args.cuts)[:args.limit]
    rows = {}
    for name, splice in (("as is", scoring.splice_posteriors), ("calibrated", calibrated_splice(temps))):
        original, scoring.splice_posteriors = scoring.splice_posteriors, splice
        try:
            summary = evaluate(encoder, pretrained.tokenizer, utterances, cfg, lm=lm, gate=gate).summary
        finally:
            scoring.splice_posteriors = original
        rows[name] = {p["criterion"] + ("" if p["threshold"] is None else f"@{p['threshold']:g}"): p
                      for p in summary["policies"] if p["granularity"] == "chunk"}
        last = [e["wer"] for e in summary["per_exit"] if e["decoding"] == "lm"][-1]
    print(f"{args.cuts.name}, {len(utterances)} utterances, chunk mask 8 x 4, beam 8 + LM; last exit {last:.2f}%")
    print(f"{'policy':>16}  {'compute':>7}  {'WER as is':>9}  {'calibrated':>10}")
    for key, p in rows["as is"].items():
        q = rows["calibrated"][key]
        print(f"{key:>16}  {p['compute_fraction']:7.3f}  {p['wer']:8.2f}%  {q['wer']:9.2f}%"
              f"   ({100 * (p['wer'] / last - 1):+.1f}% / {100 * (q['wer'] / last - 1):+.1f}% vs last)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
