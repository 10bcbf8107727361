"""How far could a per-chunk exit rule go? Two oracles on a model's posteriors under the streaming
chunk mask (what a ``recompute`` stream computes), decoded greedy and with beam search + LM.

* ``frame``: each chunk stops at the shallowest exit whose frame-wise best tokens equal the last
  exit's on that chunk (what ``asr-ee evaluate`` calls the chunk oracle);
* ``tokens``: the shallowest exit whose chunk gives the same tokens as the last exit's once
  repeats and blanks are collapsed (timing free);

each also with a minimum exit (``--min-exits``). Both need the last exit, so they are bounds, not
rules. Usage:

    python scripts/chunk_oracle_bounds.py DATA/cuts_dev.jsonl.gz [--model M] [--lm L] [--limit N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from asr_ee.decoding.ctc import greedy_decode, prefix_beam_search
from asr_ee.decoding.lm import DEFAULT_LENGTH_BONUS, DEFAULT_LM_WEIGHT
from asr_ee.decoding.wer import WordErrors, word_errors
from asr_ee.exits.criteria import frame_argmax
from asr_ee.exits.selection import oracle_exit, segment_bounds, splice_posteriors
from asr_ee.features import SAMPLE_RATE, make_fbank
from asr_ee.inputs import from_cuts
from asr_ee.models.flops import exit_costs
from asr_ee.pretrained import load_pretrained, resolve_lm


def chunk_outputs(chunk_lps: list[torch.Tensor], kind: str) -> list[list[int]]:
    """Per exit, what the ``kind`` oracle compares on one chunk: frame-wise best tokens (``frame``),
    or those tokens with repeats and blanks collapsed (``tokens``)."""
    return [frame_argmax(lp).tolist() if kind == "frame" else greedy_decode(lp) for lp in chunk_lps]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cuts")
    p.add_argument("--model")
    p.add_argument("--lm", help="default: the shipped LM with the shipped model")
    p.add_argument("--limit", type=int)
    p.add_argument("--chunk-frames", type=int, default=8)
    p.add_argument("--left-context-chunks", type=int, default=4)
    p.add_argument("--min-exits", default="0,1,2", help="comma-separated minimum exit indices")
    args = p.parse_args()
    torch.set_num_threads(1)
    pretrained = load_pretrained(args.model)
    lm = resolve_lm(args.lm, pretrained)
    encoder, tok, fbank, c = pretrained.encoder.eval(), pretrained.tokenizer, make_fbank(), args.chunk_frames
    costs = [e.compute_fraction for e in exit_costs(encoder.cfg, float(c * (1 + args.left_context_chunks)))]
    policies = [("last exit", None, 0)] + [(kind, kind, m) for kind in ("frame", "tokens")
                                           for m in map(int, args.min_exits.split(","))]
    errors = {(name, m, d): WordErrors() for name, _, m in policies for d in ("greedy", "lm")}
    compute = {(name, m): [0.0, 0] for name, _, m in policies}
    for utt in from_cuts(Path(args.cuts))[: args.limit]:
        x = torch.from_numpy(fbank.extract(utt.load().numpy(), SAMPLE_RATE)).float()[None]
        with torch.no_grad():
            outs, _ = encoder(x, torch.tensor([x.size(1)]), chunk_frames=c, left_context_chunks=args.left_context_chunks)
        outs = [o[0] for o in outs]
        for name, kind, m in policies:
            bounds = segment_bounds(outs[0].size(0), c)
            exits = [len(outs) - 1 if kind is None else oracle_exit(chunk_outputs([o[s:e] for o in outs], kind), m)
                     for s, e in bounds]
            for k, (s, e) in zip(exits, bounds):
                compute[(name, m)][0] += costs[k] * (e - s)
                compute[(name, m)][1] += e - s
            lp = splice_posteriors(outs, exits, bounds)
            errors[(name, m, "greedy")] += word_errors(utt.reference, tok.decode(greedy_decode(lp)))
            if lm is not None:
                errors[(name, m, "lm")] += word_errors(utt.reference, tok.decode(prefix_beam_search(
                    lp, beam=8, lm=lm, lm_weight=DEFAULT_LM_WEIGHT, length_bonus=DEFAULT_LENGTH_BONUS)))
    print(f"{args.cuts}: chunk {c} frames, {args.left_context_chunks} left chunks; WER % (relative to the last exit)")
    base = {d: errors[("last exit", 0, d)].wer for d in ("greedy", "lm")}
    for name, kind, m in policies:
        spent, frames = compute[(name, m)]
        cells = [f"{d} {errors[(name, m, d)].wer:6.2f} ({100 * (errors[(name, m, d)].wer / base[d] - 1):+5.1f}%)"
                 for d in ("greedy", "lm") if d == "greedy" or lm is not None]
        label = name if kind is None else f"{name} oracle, min exit {m}"
        print(f"  {label:30s} compute {100 * spent / frames:5.1f}%   " + "   ".join(cells))


if __name__ == "__main__":
    main()
