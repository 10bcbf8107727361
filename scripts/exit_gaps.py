"""How far each exit is from the last one: per utterance, the CTC loss of every exit and the
self-distillation gap KL(last || exit) summed over frames (what ``distill_weight`` trains down), on
a cut set's first batches under the streaming chunk mask (or full context).

    python scripts/exit_gaps.py [--model exp/small/model.pt] [--data-dir DATA] [--cuts cuts_dev.jsonl.gz]
        [--batches 4] [--chunk-frames 8 --left-context-chunks 4 | --full-context]

A low CTC loss with a high KL: the exit gets the words but not where the last exit puts them; the
spikes' timing itself is ``scripts/exit_timing.py``'s (best lag per exit). A chunk that stops at such
an exit, beside chunks from deeper exits, splices spikes across its boundaries.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr_ee.config import apply_overrides  # noqa: E402
from asr_ee.data.datamodule import batch_lengths, make_valid_loader  # noqa: E402
from asr_ee.exits.loss import exit_distillation_loss, multi_exit_ctc_loss  # noqa: E402
from asr_ee.pretrained import load_pretrained  # noqa: E402
from asr_ee.training import TrainConfig  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("exp/small/model.pt"))
    p.add_argument("--data-dir", type=Path, default=Path("data/offline_tts_small"))
    p.add_argument("--cuts", default="cuts_dev.jsonl.gz", help="manifest in --data-dir")
    p.add_argument("--batches", type=int, default=4, help="batches of 60 s of audio")
    p.add_argument("--chunk-frames", type=int, default=8)
    p.add_argument("--left-context-chunks", type=int, default=4)
    p.add_argument("--full-context", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pretrained = load_pretrained(args.model, None)
    encoder = pretrained.encoder.eval().float()
    cfg = apply_overrides(TrainConfig(), [f"data.data_dir={args.data_dir}", f"data.valid_cuts={args.cuts}",
                                          "data.max_duration=60"])
    chunking = {} if args.full_context else {"chunk_frames": args.chunk_frames,
                                             "left_context_chunks": args.left_context_chunks}
    layers = list(encoder.cfg.exit_layers)
    kl, ctc, count = torch.zeros(len(layers) - 1), torch.zeros(len(layers)), 0
    with torch.no_grad():
        for batch in itertools.islice(make_valid_loader(cfg.data), args.batches):
            lengths, texts, _ = batch_lengths(batch)
            outs, out_lens = encoder(batch["inputs"], lengths, **chunking)
            kl += torch.stack(exit_distillation_loss(outs, out_lens)[1]) * len(texts)
            ctc += torch.stack(multi_exit_ctc_loss(outs, out_lens, pretrained.tokenizer.encode_batch(texts))[1]) * len(texts)
            count += len(texts)
    mode = "full context" if args.full_context else f"chunk mask {args.chunk_frames} frames, {args.left_context_chunks} left"
    print(f"{args.model} on {count} utterances of {args.data_dir / args.cuts} ({mode}), per utterance:")
    print(" exit layer | CTC loss | KL(last || exit)")
    for k, layer in enumerate(layers):
        gap = f"{kl[k] / count:16.2f}" if k < len(layers) - 1 else f"{'-':>16s}"
        print(f" {layer:>10d} | {ctc[k] / count:8.2f} | {gap}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
