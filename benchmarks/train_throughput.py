"""Training throughput on this machine: audio seconds trained per wall second, for a preset, on
real batches from a corpus (the same data pipeline, loss and optimizer as `asr-ee train`).

Usage: python benchmarks/train_throughput.py --data-dir /work/data/offline_tts_small [--preset small]
       [--steps 30] [--max-duration 60] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from asr_ee.config import from_dict
from asr_ee.data.datamodule import DataConfig, batch_lengths, make_train_loader
from asr_ee.data.tokenizer import Tokenizer
from asr_ee.exits.loss import multi_exit_ctc_loss
from asr_ee.models import build_encoder, preset
from asr_ee.models.masks import ChunkSampler, DynamicChunkConfig


def measure(args: argparse.Namespace, threads: int) -> tuple[float, float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = from_dict(DataConfig, {"data_dir": str(args.data_dir), "max_duration": args.max_duration})
    tokenizer = Tokenizer(data.path(data.tokenizer))
    model = build_encoder(preset(args.preset, vocab_size=tokenizer.vocab_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    chunks = ChunkSampler(DynamicChunkConfig([4, 8, 16, 32], 0.3, [2, 4, 8]), seed=0)
    loader, _ = make_train_loader(data, seed=0)
    audio, start = 0.0, None
    for step, batch in enumerate(loader):
        if step == args.warmup:
            audio, start = 0.0, time.perf_counter()
        lengths, texts, _ = batch_lengths(batch)
        chunk = chunks.draw()
        outs, out_lens = model(batch["inputs"], lengths, chunk_frames=chunk[0], left_context_chunks=chunk[1])
        loss, _ = multi_exit_ctc_loss(outs, out_lens, tokenizer.encode_batch(texts))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step(), optimizer.zero_grad()
        audio += float(sum(c.duration for c in batch["supervisions"]["cut"]))
        if step + 1 == args.warmup + args.steps:
            break
    elapsed = time.perf_counter() - start
    return audio / elapsed, elapsed / args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--max-duration", type=float, default=60.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"preset {args.preset}, batches of <= {args.max_duration:g} s audio, {args.steps} steps after "
          f"{args.warmup} warm-up, data {args.data_dir}")
    print(f"{'threads':>8s}{'audio-s/s':>12s}{'s/step':>10s}")
    for threads in args.threads:
        speed, per_step = measure(args, threads)
        print(f"{threads:8d}{speed:12.1f}{per_step:10.2f}")


if __name__ == "__main__":
    main()
