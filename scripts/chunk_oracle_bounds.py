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
from asr_ee.features import SAMPLE_RATE, make_fbank
from asr_ee.inputs import from_cuts
from asr_ee.models.flops import exit_costs
from asr_ee.pretrained import load_pretrained, resolve_lm


def collapsed(frame_tokens: torch.Tensor) -> list[int]:
    out, prev = [], -1
    for t in frame_tokens.tolist():
        if t != 0 and t != prev:
            out.append(t)
        prev = t
    return out


def oracle_exit(chunk_outs: list[torch.Tensor], kind: str, min_exit: int) -> int:
    """Shallowest exit (>= min_exit) whose chunk agrees with the last exit's, else the last."""
    last = chunk_outs[-1].argmax(-1)
    for k in range(min_exit, len(chunk_outs) - 1):
        best = chunk_outs[k].argmax(-1)
        if (torch.equal(best, last) if kind == "frame" else collapsed(best) == collapsed(last)):
            return k
    return len(chunk_outs) - 1


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
            parts = []
            for s in range(0, outs[0].size(0), c):
                k = len(outs) - 1 if kind is None else oracle_exit([o[s:s + c] for o in outs], kind, m)
                parts.append(outs[k][s:s + c])
                compute[(name, m)][0] += costs[k] * parts[-1].size(0)
                compute[(name, m)][1] += parts[-1].size(0)
            lp = torch.cat(parts)
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
