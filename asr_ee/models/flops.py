"""Analytic encoder cost: parameters and FLOPs per second of audio, per exit (:func:`exit_costs`),
and the compute of one streamed chunk with what its skipped layers cost (:class:`ChunkCost`).

Counts multiply-adds of the matrix products and convolutions (x2 for FLOPs); element-wise work
(norms, activations, softmax) is left out, as is usual. Attention scores depend on how many frames
each query sees, ``context_frames`` (chunk + left context when streaming).
"""

from __future__ import annotations

from dataclasses import dataclass

from asr_ee.models.config import EncoderConfig
from asr_ee.models.frames import ENCODER_FRAMES_PER_SECOND
from asr_ee.models.state import SkipPolicy

__all__ = ["ExitCost", "exit_costs", "ChunkCost", "ENCODER_FRAMES_PER_SECOND"]


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


class ChunkCost:
    """Prices chunks of an encoder streamed with ``context_frames`` (chunk + left context), as a
    fraction of a full-depth chunk: :func:`exit_costs` (FLOPs to reach each exit, heads on the way
    included), plus what the skipped-layer answer adds:

    * ``recompute``: blocks run again for earlier chunks (``ChunkOutput.blocks_run`` beyond the
      chunk's own blocks), each priced as an average block;
    * ``copy``: every skipped layer projects the exit's hidden states into its key/value and
      convolution caches: 4 D^2 multiply-adds per frame (K and V projections, the GLU pointwise
      convolution), a Splitformer branch at half rate.
    """

    def __init__(self, cfg: EncoderConfig, context_frames: float) -> None:
        costs = exit_costs(cfg, context_frames=context_frames)
        full = costs[-1].gflops_per_second
        self.exit_fractions = [c.compute_fraction for c in costs]
        self.block_fraction = 0.0 if len(costs) < 2 else \
            (self.exit_fractions[-1] - self.exit_fractions[0]) / (len(costs) - 1)
        fill_gflops = 2 * ENCODER_FRAMES_PER_SECOND * 4 * cfg.d_model ** 2 / 1e9
        self.fill_fraction_per_layer = fill_gflops / full
        self.exit_layers = list(cfg.exit_layers)
        self.num_layers = cfg.num_layers
        self.split_layers = cfg.resolved_split_exit_layers()

    def fraction(self, exit_index: int, blocks_run: float, skip_policy: SkipPolicy) -> float:
        """Compute of a chunk that stopped at ``exit_index`` having run ``blocks_run`` blocks."""
        own = self.exit_fractions[exit_index]
        if skip_policy == SkipPolicy.RECOMPUTE:
            return own + self.block_fraction * max(0.0, blocks_run - (exit_index + 1))
        stop = self.exit_layers[exit_index]
        skipped = self.num_layers - stop + 0.5 * sum(1 for layer in self.split_layers if layer > stop)
        return own + self.fill_fraction_per_layer * skipped
