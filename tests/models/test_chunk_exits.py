"""Copy-stream training draws: which batches skip, and where each chunk stops."""

from __future__ import annotations

import random

import pytest
import torch

from asr_ee.config import ConfigError
from asr_ee.models.masks import ChunkSampler, DynamicChunkConfig, random_chunk_exits


def test_without_skipping_the_draws_are_those_of_older_runs() -> None:
    """skip_prob 0 consumes the RNG exactly as before the option existed, so old runs resume unchanged."""
    cfg = DynamicChunkConfig([4, 8, 16, 32], 0.3, [2, 4, 8])
    sampler, rng = ChunkSampler(cfg, seed=7), random.Random(7)
    for _ in range(200):
        expected = (None, None) if rng.random() < 0.3 else (rng.choice([4, 8, 16, 32]), rng.choice([2, 4, 8]))
        draw = sampler.draw()
        assert (draw.chunk_frames, draw.left_context_chunks) == expected and draw.exits_seed is None


def test_skip_prob_marks_chunked_batches_only() -> None:
    sampler = ChunkSampler(DynamicChunkConfig([4, 8], 0.3, [2], skip_prob=1.0), seed=0)
    draws = [sampler.draw() for _ in range(300)]
    full = [d for d in draws if d.chunk_frames is None]
    chunked = [d for d in draws if d.chunk_frames is not None]
    assert 50 < len(full) < 130 and all(d.exits_seed is None for d in full)
    assert all(d.exits_seed is not None for d in chunked)
    half = ChunkSampler(DynamicChunkConfig([4, 8], 0.0, [2], skip_prob=0.5), seed=0)
    marked = sum(half.draw().exits_seed is not None for _ in range(1000))
    assert 400 < marked < 600
    with pytest.raises(ConfigError, match="skip_prob"):
        DynamicChunkConfig([4], skip_prob=1.5)


def test_random_chunk_exits() -> None:
    exits = random_chunk_exits(64, 101, 8, 6, seed=3)
    assert exits.shape == (64, 13) and exits.dtype == torch.long
    assert torch.equal(exits, random_chunk_exits(64, 101, 8, 6, seed=3))
    assert not torch.equal(exits, random_chunk_exits(64, 101, 8, 6, seed=4))
    share_last = (exits == 5).float().mean().item()
    assert 0.4 < share_last < 0.6
    assert set(exits.unique().tolist()) == set(range(6))
