"""Analytic encoder compute of one streamed chunk, as a fraction of a full-depth chunk.

From :func:`asr_ee.models.flops.exit_costs` (FLOPs to reach each exit, heads on the way
included), plus what the skipped-layer answer adds:

* ``recompute``: blocks run again for earlier chunks (``ChunkOutput.blocks_run`` beyond the
  chunk's own blocks), each priced as an average block;
* ``copy``: every skipped layer projects the exit's hidden states into its key/value and
  convolution caches: 4 D^2 multiply-adds per frame (K and V projections, the GLU pointwise
  convolution), a Splitformer branch at half rate.
"""

from __future__ import annotations

from asr_ee.models.config import EncoderConfig
from asr_ee.models.encoder import SkipPolicy
from asr_ee.models.flops import ENCODER_FRAMES_PER_SECOND, exit_costs

__all__ = ["ChunkCost"]


class ChunkCost:
    """Prices chunks of an encoder streamed with ``context_frames`` (chunk + left context)."""

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
