"""CTC forced alignment on kept top-k posteriors: token spans where the posteriors put them."""

from __future__ import annotations

import math

import pytest
import torch

from asr_ee.decoding.align import TopKPosteriors, align_tokens
from asr_ee.decoding.ctc import greedy_decode, prefix_beam_search


def _posteriors(frame_tokens: list[int], vocab: int = 6, peak: float = 0.9) -> torch.Tensor:
    """(T, V) log-posteriors whose best token per frame is ``frame_tokens[t]`` with prob ``peak``."""
    probs = torch.full((len(frame_tokens), vocab), (1 - peak) / (vocab - 1))
    for t, token in enumerate(frame_tokens):
        probs[t, token] = peak
    return probs.log()


def test_spans_follow_the_frames_of_each_token_across_chunks() -> None:
    frames = [0, 0, 3, 3, 0, 0, 0, 5, 0, 5, 5, 0, 2]     # tokens 3, 5, 5 (a repeat after blank), 2
    log_probs = _posteriors(frames)
    kept = TopKPosteriors(k=3)
    kept.append(log_probs[:5])
    kept.append(log_probs[5:])                         # two chunks
    tokens = greedy_decode(log_probs)
    assert tokens == [3, 5, 5, 2]
    spans = align_tokens(kept, tokens)
    assert [(s.token, s.start, s.end) for s in spans] == [(3, 2, 4), (5, 7, 8), (5, 9, 11), (2, 12, 13)]
    assert all(math.isclose(s.probability, 0.9, rel_tol=1e-5) for s in spans)


def test_a_beam_result_aligns_within_the_kept_tokens() -> None:
    torch.manual_seed(0)
    log_probs = torch.randn(40, 8).mul(3).log_softmax(-1)
    tokens = prefix_beam_search(log_probs, beam=4)
    kept = TopKPosteriors(k=8)
    kept.append(log_probs)
    spans = align_tokens(kept, tokens)
    assert [s.token for s in spans] == tokens
    assert all(s.end > s.start for s in spans)
    assert all(b.start >= a.end for a, b in zip(spans, spans[1:]))   # in order, not overlapping
    for s in spans:
        assert s.probability == pytest.approx(log_probs[s.start:s.end, s.token].exp().max().item(), rel=1e-5)


def test_no_tokens_no_spans() -> None:
    assert align_tokens(TopKPosteriors(), []) == []
