"""Analytic encoder cost: parameters and FLOPs per second of audio, per exit.

Counts multiply-adds of the matrix products and convolutions (x2 for FLOPs); element-wise work
(norms, activations, softmax) is left out, as is usual. Attention scores depend on how many frames
each query sees, ``context_frames`` (chunk + left context when streaming).
"""

from __future__ import annotations

from dataclasses import dataclass

from asr_ee.models.config import EncoderConfig

__all__ = ["ExitCost", "exit_costs", "ENCODER_FRAMES_PER_SECOND"]

ENCODER_FRAMES_PER_SECOND = 25.0  # 100 fbank frames/s subsampled 4x


@dataclass
class ExitCost:
    exit_layer: int
    params: int                 # parameters used to reach this exit (incl. its head)
    gflops_per_second: float    # encoder + this exit's head, per second of audio
    compute_fraction: float     # of the cost of the last exit, taking every exit on the way


def _layer_macs(cfg: EncoderConfig, context_frames: float) -> float:
    d = cfg.d_model
    ffn = 2 * (2 * d * cfg.ffn_dim)
    attn = 4 * d * d + 2 * d * context_frames
    conv = d * 2 * d + d * cfg.conv_kernel + d * d
    return ffn + attn + conv


def _layer_params(cfg: EncoderConfig) -> int:
    d = cfg.d_model
    ffn = 2 * (2 * d * cfg.ffn_dim + cfg.ffn_dim + d + 2 * d)
    attn = 4 * d * d + 4 * d + 2 * d
    conv = 2 * d + (2 * d * d + 2 * d) + (d * cfg.conv_kernel + d) + 2 * d + (d * d + d)
    return ffn + attn + conv + 2 * d


def exit_costs(cfg: EncoderConfig, context_frames: float = 80.0) -> list[ExitCost]:
    """Cost of stopping at each exit, having evaluated every earlier exit's head too (that is what
    an early-exit decoder pays)."""
    c, d, fps = cfg.subsampling_channels, cfg.d_model, ENCODER_FRAMES_PER_SECOND
    f1, f2 = (cfg.num_mel_bins - 1) // 2, ((cfg.num_mel_bins - 1) // 2 - 1) // 2
    sub_macs = 2 * fps * f1 * c * 9 + fps * f2 * c * c * 9 + fps * c * f2 * d
    sub_params = (9 * c + c) + (9 * c * c + c) + (c * f2 * d + d)
    head_macs, head_params = fps * d * cfg.vocab_size, d * cfg.vocab_size + cfg.vocab_size + 2 * d
    layer_macs = fps * _layer_macs(cfg, context_frames)
    branch_macs = fps / 2 * _layer_macs(cfg, context_frames / 2)
    split = set(cfg.resolved_split_exit_layers())
    macs, params, costs, prev = sub_macs, sub_params, [], 0
    for layer in cfg.exit_layers:
        n = layer - prev
        macs += n * layer_macs + head_macs
        params += n * _layer_params(cfg) + head_params
        if layer in split:
            macs += branch_macs
            params += _layer_params(cfg)
        costs.append(ExitCost(layer, params, 2 * macs / 1e9, 0.0))
        prev = layer
    for cost in costs:
        cost.compute_fraction = cost.gflops_per_second / costs[-1].gflops_per_second
    return costs
