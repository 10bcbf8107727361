"""The chunk mask: one function serves training (dynamic chunk sizes) and streaming decoding.

Frame ``i`` belongs to chunk ``i // chunk_frames``. It may attend to every frame of its own chunk
and of the ``left_context_chunks`` chunks before it; ``None`` means unlimited left context, and
``chunk_frames=None`` means full context (offline). Example, 6 frames, 2-frame chunks, 1 left chunk::

    >>> chunk_mask(6, chunk_frames=2, left_context_chunks=1).int()
    tensor([[1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [0, 0, 1, 1, 1, 1],
            [0, 0, 1, 1, 1, 1]], dtype=torch.int32)

A streaming encoder that processes ``chunk_frames`` frames at a time and keeps
``left_context_chunks * chunk_frames`` frames of attention cache computes exactly what the full
forward pass computes under this mask.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

import torch

from asr_ee.config import ConfigError

__all__ = ["chunk_mask", "attention_mask", "ChunkSampler", "ChunkDraw", "DynamicChunkConfig", "random_chunk_exits"]


def chunk_mask(num_frames: int, chunk_frames: int | None, left_context_chunks: int | None,
               device: torch.device | None = None) -> torch.Tensor:
    """Boolean (T, T) mask, True where query frame (row) may attend to key frame (column)."""
    if chunk_frames is None:
        return torch.ones(num_frames, num_frames, dtype=torch.bool, device=device)
    if chunk_frames <= 0:
        raise ValueError(f"chunk_frames must be positive or None, got {chunk_frames}")
    chunk = torch.arange(num_frames, device=device) // chunk_frames
    q, k = chunk[:, None], chunk[None, :]
    mask = k <= q
    if left_context_chunks is not None:
        mask &= k >= q - left_context_chunks
    return mask


@dataclass
class DynamicChunkConfig:
    """How training draws a chunk size per batch (so one model serves several latencies).

    Attributes:
        chunk_frames_choices: chunk sizes (in encoder frames, 40 ms each) drawn uniformly.
        full_context_prob: probability of a full-context (offline) batch.
        left_context_chunks_choices: left contexts drawn uniformly; ``None`` entries mean unlimited.
        skip_prob: probability that a chunked batch is trained the way a ``copy`` stream runs it:
            each chunk stops at a random exit (:func:`random_chunk_exits`) and the deeper layers
            see it as copied states (``EarlyExitEncoder.forward(chunk_exits=...)``). 0 = never.
    """

    chunk_frames_choices: list[int]
    full_context_prob: float = 0.25
    left_context_chunks_choices: list[int | None] | None = None
    skip_prob: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.skip_prob <= 1.0:
            raise ConfigError(f"chunk.skip_prob must be in [0, 1], got {self.skip_prob}")


class ChunkDraw(NamedTuple):
    """One batch's attention setting; ``exits_seed`` (None: no skipping) seeds its per-chunk exits."""

    chunk_frames: int | None
    left_context_chunks: int | None
    exits_seed: int | None = None


def random_chunk_exits(batch_size: int, num_frames: int, chunk_frames: int, num_exits: int, seed: int,
                       device: torch.device | None = None) -> torch.Tensor:
    """(B, number of chunks) exit indices: the last exit with probability 1/2, otherwise one of
    the earlier exits uniformly (what a confidence criterion does, roughly: many chunks go deep)."""
    gen = torch.Generator().manual_seed(seed)
    num_chunks = -(-num_frames // chunk_frames)
    shallow = torch.randint(0, max(num_exits - 1, 1), (batch_size, num_chunks), generator=gen)
    deep = torch.rand(batch_size, num_chunks, generator=gen) < 0.5
    return torch.where(deep, num_exits - 1, shallow).to(device)


class ChunkSampler:
    """Draws (chunk_frames, left_context_chunks[, exits seed]) per batch from a seeded RNG."""

    def __init__(self, cfg: DynamicChunkConfig, seed: int = 0) -> None:
        self.cfg = cfg
        self.rng = random.Random(seed)

    def draw(self) -> ChunkDraw:
        if not self.cfg.chunk_frames_choices or self.rng.random() < self.cfg.full_context_prob:
            return ChunkDraw(None, None)
        chunk = self.rng.choice(self.cfg.chunk_frames_choices)
        left = self.rng.choice(self.cfg.left_context_chunks_choices or [None])
        if self.cfg.skip_prob > 0 and self.rng.random() < self.cfg.skip_prob:
            return ChunkDraw(chunk, left, self.rng.getrandbits(31))
        return ChunkDraw(chunk, left)

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        state_rng = state["rng"]
        self.rng.setstate((state_rng[0], tuple(state_rng[1]), state_rng[2]))


def attention_mask(lengths: torch.Tensor, frames: int, chunk_frames: int | None,
                   left_context_chunks: int | None) -> torch.Tensor | None:
    """(B, 1, T, T) bool for a padded batch: the chunk mask without padded keys; None when nothing
    is masked (full context, no padding), which lets attention take its unmasked fast path.

    Every frame may also attend to itself, so padded query rows are never empty (an all-False
    row would make softmax produce NaN); valid frames are unaffected.
    """
    if chunk_frames is None and bool((lengths >= frames).all()):
        return None
    mask = chunk_mask(frames, chunk_frames, left_context_chunks, device=lengths.device)
    valid = torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)
    mask = mask[None] & valid[:, None, :]
    mask |= torch.eye(frames, dtype=torch.bool, device=lengths.device)[None]
    return mask.unsqueeze(1)
