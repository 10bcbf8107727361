"""Forward time of our Conformer layer stack against torchaudio.models.Conformer of the same
dimensions, full context, measured in one run and reported as a ratio (the machine is noisy;
the ratio is what to read). Target: ours / torchaudio <= 1.05.

Usage: python benchmarks/encoder_forward.py [--preset small] [--batch 8] [--seconds 10] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchaudio

from asr_ee.models import build_encoder, preset
from asr_ee.models.masks import attention_mask


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="utterance length")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = preset(args.preset, dropout=0.0)
    ours = build_encoder(cfg).eval()
    theirs = torchaudio.models.Conformer(input_dim=cfg.d_model, num_heads=cfg.num_heads, ffn_dim=cfg.ffn_dim,
                                         num_layers=cfg.num_layers, depthwise_conv_kernel_size=cfg.conv_kernel).eval()
    frames = int(args.seconds * 25)
    x = torch.randn(args.batch, frames, cfg.d_model)
    lengths = torch.full((args.batch,), frames)
    feats = torch.randn(args.batch, int(args.seconds * 100), cfg.num_mel_bins)
    feat_lens = torch.full((args.batch,), feats.size(1))

    def run_ours() -> None:
        mask = attention_mask(lengths, frames, None, None)
        rope = ours.layers[0].rope(0, frames, x.device)
        h = x
        for layer in ours.layers:
            h = layer(h, mask, rope)

    def run_theirs() -> None:
        theirs(x, lengths)

    def run_ours_full() -> None:
        ours(feats, feat_lens)

    with torch.inference_mode():
        # interleave the two in ABBA order so drifts in machine load hit both alike; the ratio is
        # the median of the per-round ratios
        t_ours, t_theirs = [], []
        for i in range(args.repeats):
            first, second = (run_ours, run_theirs) if i % 2 == 0 else (run_theirs, run_ours)
            a, b = _time(first, 1)[0], _time(second, 1)[0]
            t_ours.append(a if first is run_ours else b)
            t_theirs.append(b if first is run_ours else a)
        t_full = _time(run_ours_full, args.repeats)
    m_ours, m_theirs, m_full = (statistics.median(t) for t in (t_ours, t_theirs, t_full))
    ratio = statistics.median(o / t for o, t in zip(t_ours, t_theirs))
    audio = args.batch * args.seconds
    print(f"preset {args.preset}: {cfg.num_layers} layers, d_model {cfg.d_model}, ffn {cfg.ffn_dim}, kernel "
          f"{cfg.conv_kernel}; batch {args.batch} x {args.seconds:g} s, {args.threads} threads, median of {args.repeats}")
    print(f"{'':38s}{'ms/batch':>10s}{'RTF':>10s}")
    print(f"{'torchaudio.models.Conformer':38s}{m_theirs * 1e3:10.1f}{m_theirs / audio:10.4f}")
    print(f"{'asr_ee layers (rope, causal conv)':38s}{m_ours * 1e3:10.1f}{m_ours / audio:10.4f}")
    print(f"{'asr_ee full encoder (+subsampling, 6 exits)':38s}{m_full * 1e3:10.1f}{m_full / audio:10.4f}")
    print(f"ratio ours / torchaudio (layers), median of {args.repeats} paired rounds: {ratio:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
