"""Do the exits put their CTC spikes on the same frames as the last exit?

For each exit, counts frames where both it and the last exit emit a non-blank token, with the
exit's frames shifted by a lag of -L..+L; the best lag is the exit's timing offset. A non-zero
offset means per-chunk exit switching splices spikes across chunk boundaries (a token twice,
or not at all), and that frame-wise agreement with the last exit (the evaluation's chunk oracle)
understates what the exit gets right.

    python scripts/exit_timing.py MODEL CUTS [--limit 100] [--chunk-frames 8] [--left-context-chunks 4]

(``scripts/exit_timing.py`` runs :func:`main`.)
"""

from __future__ import annotations

import argparse

import torch

from asr_ee.features import SAMPLE_RATE, make_fbank
from asr_ee.inputs import from_cuts
from asr_ee.pretrained import load_pretrained

__all__ = ["lag_matches", "main"]


def lag_matches(nonblank: list[torch.Tensor], max_lag: int) -> torch.Tensor:
    """(exits, 2 * max_lag + 1): for each exit and lag l, frames t with a spike at t in the exit and
    at t + l in the last exit. ``nonblank``: per exit, a (T,) 0/1 float tensor."""
    last, frames = nonblank[-1], nonblank[-1].numel()
    out = torch.zeros(len(nonblank), 2 * max_lag + 1)
    for k, spikes in enumerate(nonblank):
        for j, lag in enumerate(range(-max_lag, max_lag + 1)):
            if lag >= 0:
                out[k, j] = (spikes[:frames - lag] * last[lag:]).sum()
            else:
                out[k, j] = (spikes[-lag:] * last[:frames + lag]).sum()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("cuts")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--max-lag", type=int, default=3)
    parser.add_argument("--chunk-frames", type=int, default=8, help="chunk mask (0: full context)")
    parser.add_argument("--left-context-chunks", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pretrained = load_pretrained(args.model)
    encoder, fbank = pretrained.encoder.eval(), make_fbank()
    total = None
    for utt in from_cuts(args.cuts)[:args.limit]:
        feats = torch.from_numpy(fbank.extract(utt.load().numpy(), SAMPLE_RATE)).float()[None]
        with torch.no_grad():
            outs, _ = encoder(feats, torch.tensor([feats.size(1)]), chunk_frames=args.chunk_frames or None,
                              left_context_chunks=args.left_context_chunks if args.chunk_frames else None)
        counts = lag_matches([(o[0].argmax(-1) != pretrained.tokenizer.blank_id).float() for o in outs],
                             args.max_lag)
        total = counts if total is None else total + counts
    assert total is not None
    lags = list(range(-args.max_lag, args.max_lag + 1))
    print(f"{args.model}: {args.limit} utterances of {args.cuts}; spikes of each exit matched to the last exit's")
    print("exit layer | best lag | " + " | ".join(f"lag {lag:+d}" for lag in lags))
    for layer, row in zip(encoder.cfg.exit_layers, total):
        print(f"{layer:>10d} | {lags[int(row.argmax())]:+8d} | " + " | ".join(f"{int(v):>6d}" for v in row))
    return 0
