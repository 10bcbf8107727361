"""Early-exit encoder: subsampling, Conformer blocks with a CTC exit after each (the EE-Conformer);
other architectures subclass it (:class:`~asr_ee.models.splitformer.SplitformerEncoder` adds a
parallel branch beside some blocks). ``forward`` trains (all exits, chunk mask); ``infer`` streams
one chunk and stops at the first exit a decision function accepts.

Shapes: B batch, T fbank frames, T' encoder frames (40 ms), C chunk frames, D model dim, V vocab.

A *block* is the run of layers between two exits; block ``b`` ends at ``exit_layers[b]``.

When a chunk stops early, the layers above have no cache for its frames. ``infer`` offers the two
known answers (``SkipPolicy``):

* ``copy``: the stopping exit's hidden states stand in for the skipped layers' inputs; each skipped
  layer projects them into its key/value and convolution caches (cheap, approximate).
* ``recompute``: the chunk's hidden states are kept; when a later chunk goes deeper, the skipped
  blocks are first run on the kept chunks that are still inside the left-context window, in order
  (exact within the window, costs compute only when a later chunk goes deep).
"""

from __future__ import annotations

import torch
from torch import nn

from asr_ee.config import ConfigError
from asr_ee.models.config import EncoderConfig
from asr_ee.models.conformer import ConformerLayer
from asr_ee.models.masks import attention_mask
from asr_ee.models.state import ChunkOutput, EncoderState, ExitDecision, PendingChunk, SkipPolicy  # torch-free
from asr_ee.models.subsampling import Conv2dSubsampling

__all__ = ["EarlyExitEncoder", "EncoderState", "PendingChunk", "SkipPolicy", "ChunkOutput",
           "ExitDecision"]


class EarlyExitEncoder(nn.Module):
    """The EE-Conformer (``arch: conformer``). A subclass may put a parallel branch beside a block:
    it fills ``branches`` (modules with ``forward``/``infer``/``fill_state`` as
    :class:`~asr_ee.models.splitformer.SplitBranch`) and ``branch_of_block`` (block -> branch)."""

    arch = "conformer"

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        if cfg.arch != self.arch:
            raise ConfigError(f"{type(self).__name__} builds arch {self.arch!r}, the config says {cfg.arch!r} "
                              "(use asr_ee.models.build_encoder)")
        self.cfg = cfg
        self.subsampling = Conv2dSubsampling(num_mel_bins=cfg.num_mel_bins, d_model=cfg.d_model,
                                             channels=cfg.subsampling_channels)
        self.layers = nn.ModuleList([self._make_layer() for _ in range(cfg.num_layers)])
        self.exits = nn.ModuleList([nn.Sequential(nn.LayerNorm(cfg.d_model), nn.Linear(cfg.d_model, cfg.vocab_size))
                                    for _ in cfg.exit_layers])
        self.branch_of_block: dict[int, int] = {}
        self.branches = nn.ModuleList()  # registered after the exits: parameter order, hence optimizer state
        bounds = [0] + list(cfg.exit_layers)
        self.block_layers = [range(bounds[b], bounds[b + 1]) for b in range(len(cfg.exit_layers))]

    def _make_layer(self) -> ConformerLayer:
        c = self.cfg
        return ConformerLayer(d_model=c.d_model, num_heads=c.num_heads, ffn_dim=c.ffn_dim, conv_kernel=c.conv_kernel,
                              dropout=c.dropout, causal=c.causal, rotary=c.positional == "rope",
                              conv_norm=c.conv_norm)

    def check_chunk_frames(self, chunk_frames: int) -> None:
        """Raise :class:`ConfigError` when this architecture cannot stream chunks of ``chunk_frames``
        encoder frames (any size works here)."""

    @property
    def num_exits(self) -> int:
        return len(self.cfg.exit_layers)

    def exit_log_probs(self, exit_index: int, hidden: torch.Tensor) -> torch.Tensor:
        return self.exits[exit_index](hidden).log_softmax(dim=-1)

    # ------------------------------------------------------------------ training / offline
    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor, *, chunk_frames: int | None = None,
                left_context_chunks: int | None = None, num_exits: int | None = None,
                chunk_exits: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """feats: (B, T, F), feat_lens: (B,). Returns per-exit log-probs [(B, T', V)] and lengths (B,).

        ``chunk_frames=None`` is full context; ``num_exits`` stops after that many exits.

        ``chunk_exits`` (B, number of chunks), with ``chunk_frames``: the exit index each chunk
        stops at, as a ``SkipPolicy.COPY`` stream would run it. Blocks above a chunk's exit pass its
        frames through and the deeper layers see them as ``copy`` caches them; each exit's output
        on such frames is the stopping exit's. The last output is then exactly what the stream
        decodes, chunk by chunk (tested against ``infer``).
        """
        x, lens = self.subsampling(feats, feat_lens)  # (B, T', D)
        mask = attention_mask(lens, x.size(1), chunk_frames, left_context_chunks)
        rope = self.layers[0].rope(0, x.size(1), x.device)
        frame_exits = None
        if chunk_exits is not None:
            if chunk_frames is None:
                raise ValueError("chunk_exits needs chunk_frames (exits are chosen per chunk)")
            frame_exits = chunk_exits.repeat_interleave(chunk_frames, dim=1)[:, :x.size(1)]  # (B, T')
            if frame_exits.size(1) < x.size(1):
                raise ValueError(f"chunk_exits covers {frame_exits.size(1)} of {x.size(1)} frames")
        outputs: list[torch.Tensor] = []
        for b in range(num_exits or self.num_exits):
            block_in = x
            skip = None if frame_exits is None else frame_exits < b  # (B, T')
            if skip is not None and not bool(skip.any()):
                skip = None
            for i in self.block_layers[b]:
                x = self.layers[i](x, mask, rope, skip)
            if b in self.branch_of_block:
                y = self.branches[self.branch_of_block[b]](block_in, lens, chunk_frames, left_context_chunks, skip)
                x = x + (y if skip is None else y.masked_fill(skip[..., None], 0.0))
            log_probs = self.exit_log_probs(b, x)
            outputs.append(log_probs if skip is None else torch.where(skip[..., None], outputs[-1], log_probs))
        return outputs, lens

    # ------------------------------------------------------------------ streaming
    def initial_state(self, batch_size: int = 1, device: torch.device | None = None) -> EncoderState:
        return EncoderState.initial(self.cfg, batch_size, device)

    def _run_block(self, b: int, x: torch.Tensor, start: int, rope: torch.Tensor, state: EncoderState,
                   left_context_frames: int | None) -> torch.Tensor:
        """Block b on a chunk starting at encoder frame ``start``; ``rope``: its rotary tables."""
        block_in = x
        for i in self.block_layers[b]:
            x, state.layers[i] = self.layers[i].infer(x, state.layers[i], rope, left_context_frames)
        if b in self.branch_of_block:
            j = self.branch_of_block[b]
            y, state.branches[j] = self.branches[j].infer(block_in, start, state.branches[j], left_context_frames)
            x = x + y
        return x

    def _fill_block(self, b: int, hidden: torch.Tensor, start: int, rope: torch.Tensor, state: EncoderState,
                    left_context_frames: int | None) -> None:
        for i in self.block_layers[b]:
            state.layers[i] = self.layers[i].fill_state(hidden, state.layers[i], rope, left_context_frames)
        if b in self.branch_of_block:
            j = self.branch_of_block[b]
            state.branches[j] = self.branches[j].fill_state(hidden, start, state.branches[j], left_context_frames)

    def _catch_up(self, b: int, state: EncoderState, start: int, left_context_frames: int | None,
                  chunk_frames: int) -> float:
        """Run block b on kept chunks that need it and are still in the window; returns work done."""
        def run(p: PendingChunk) -> torch.Tensor:
            rope = self.layers[0].rope(p.start, p.hidden.size(1), p.hidden.device)
            return self._run_block(b, p.hidden, p.start, rope, state, left_context_frames)

        return state.catch_up(b, start, left_context_frames, chunk_frames, self.num_exits, run)

    @torch.no_grad()
    def infer(self, feats: torch.Tensor, state: EncoderState, *, left_context_frames: int | None,
              decide: ExitDecision | None = None, max_exit: int | None = None,
              skip_policy: SkipPolicy = SkipPolicy.RECOMPUTE) -> ChunkOutput:
        """Stream one chunk.

        Args:
            feats: (B, N, F) new fbank frames; with the subsampling cache they must yield exactly
                one chunk of encoder frames (the caller aligns chunks, see ``streaming``).
            state: from :meth:`initial_state` or the previous call (updated in place and returned).
            left_context_frames: attention cache size (chunk_frames * left_context_chunks), None = all.
            decide: stop at the first exit for which ``decide(exit_index, log_probs, hidden)`` is True;
                None runs to ``max_exit``.
            max_exit: deepest exit index allowed (the compute-load cap); None = the last exit.
        """
        frames, state.subsampling = self.subsampling.infer(feats, state.subsampling)
        chunk = frames.size(1)
        if chunk == 0:
            return ChunkOutput(frames.new_zeros(frames.size(0), 0, self.cfg.vocab_size), -1, 0.0, state)
        self.check_chunk_frames(state.frames_done)  # every earlier chunk was a whole chunk
        start, last = state.frames_done, self.num_exits - 1 if max_exit is None else min(max_exit, self.num_exits - 1)
        x, work, log_probs, b = frames, 0.0, None, 0
        rope = self.layers[0].rope(start, chunk, frames.device)  # one table for every block of this chunk
        for b in range(last + 1):
            if skip_policy == SkipPolicy.RECOMPUTE and state.pending:
                work += self._catch_up(b, state, start, left_context_frames, chunk)
            x = self._run_block(b, x, start, rope, state, left_context_frames)
            work += 1.0
            log_probs = self.exit_log_probs(b, x)
            if b == last or (decide is not None and decide(b, log_probs, x)):
                break
        if b < self.num_exits - 1:
            if skip_policy == SkipPolicy.COPY:
                for skipped in range(b + 1, self.num_exits):
                    self._fill_block(skipped, x, start, rope, state, left_context_frames)
            else:
                state.pending.append(PendingChunk(hidden=x, start=start, next_block=b + 1))
        state.frames_done += chunk
        assert log_probs is not None
        return ChunkOutput(log_probs, b, work, state)
