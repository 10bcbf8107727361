"""Token and word timings from CTC posteriors: a Viterbi forced alignment of a decoded token
sequence (greedy or beam, with or without an LM) against the posteriors it was decoded from.

The streaming recognizer keeps, per segment, each frame's ``k`` most likely tokens and their
log-probabilities (:class:`TopKPosteriors`, 2 x k numbers a frame instead of V). Both decoders only
ever extend a hypothesis with one of a frame's top ``prune_top_k`` tokens (greedy: the top 1), so a
path for the decoded tokens exists within the kept tokens; a token outside them scores
``FLOOR_LOG_PROB``.

Shapes: T frames, K kept tokens per frame, L tokens, S = 2L + 1 alignment states.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import Any

import numpy as np

from asr_ee.decoding.ctc import as_log_probs

__all__ = ["TopKPosteriors", "TokenSpan", "align_tokens", "FLOOR_LOG_PROB"]

FLOOR_LOG_PROB = -1e4  # a token outside a frame's kept top k (far below any kept one)


@dataclass
class TopKPosteriors:
    """A segment's per-frame top-``k`` tokens and log-probabilities, appended chunk by chunk."""

    k: int = 8
    ids: list[np.ndarray] = field(default_factory=list)       # per chunk (C, K) int32
    log_probs: list[np.ndarray] = field(default_factory=list)  # per chunk (C, K) float32

    def append(self, log_probs: Any) -> None:
        """Keep the top ``k`` of a chunk's (C, V) log-posteriors (numpy, or a CPU tensor)."""
        lp = as_log_probs(log_probs)
        if lp.shape[0] == 0:
            return
        k = min(self.k, lp.shape[-1])
        top_ids = np.argsort(-lp, axis=-1, kind="stable")[:, :k]  # best first, ties by token id
        self.ids.append(top_ids.astype(np.int32))
        self.log_probs.append(np.take_along_axis(lp, top_ids, axis=-1))

    @property
    def frames(self) -> int:
        return sum(a.shape[0] for a in self.ids)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.ids) + sum(a.nbytes for a in self.log_probs)

    def emissions(self, labels: list[int]) -> np.ndarray:
        """(T, len(labels)) log-probability of each label at each frame (``FLOOR_LOG_PROB`` when
        the label is not among the frame's kept tokens)."""
        ids = np.concatenate(self.ids) if self.ids else np.zeros((0, self.k), np.int32)
        lps = np.concatenate(self.log_probs) if self.log_probs else np.zeros((0, self.k), np.float32)
        out = np.full((ids.shape[0], len(labels)), FLOOR_LOG_PROB, dtype=np.float32)
        for column, label in enumerate(labels):
            hit = ids == label                                       # (T, K)
            rows = hit.any(axis=1)
            out[rows, column] = lps[hit]                             # one hit per row at most
        return out


@dataclass(frozen=True)
class TokenSpan:
    """One aligned token: frames ``[start, end)`` of its segment and its posterior probability
    (the highest over the frames aligned to it)."""

    token: int
    start: int
    end: int
    probability: float


def align_tokens(posteriors: TopKPosteriors, tokens: list[int], blank: int = 0) -> list[TokenSpan]:
    """The most likely CTC alignment of ``tokens`` to the kept posteriors (Viterbi).

    Returns one span per token, in order; empty when there are no tokens. Memory: T x S bytes of
    back-pointers (a 20 s segment of 60 tokens: 500 x 121).
    """
    if not tokens:
        return []
    labels = sorted(set(tokens) | {blank})
    column = {label: i for i, label in enumerate(labels)}
    emit_by_label = posteriors.emissions(labels)                       # (T, labels)
    frames = emit_by_label.shape[0]
    states = np.array([blank if s % 2 == 0 else tokens[s // 2] for s in range(2 * len(tokens) + 1)])
    emit = emit_by_label[:, [column[int(label)] for label in states]]  # (T, S)
    if frames == 0:
        raise ValueError("no posteriors to align the tokens to")
    skip_ok = np.zeros(len(states), dtype=bool)                        # s-2 -> s allowed
    skip_ok[3::2] = states[3::2] != states[1:-2:2]
    score = np.full(len(states), -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((frames, len(states)), dtype=np.int8)             # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, frames):
        from1 = np.concatenate(([-np.inf], score[:-1]))
        from2 = np.where(skip_ok, np.concatenate(([-np.inf, -np.inf], score[:-2])), -np.inf)
        stacked = np.stack([score, from1, from2])                       # (3, S)
        choice = stacked.argmax(axis=0)
        back[t] = choice
        score = stacked[choice, np.arange(len(states))] + emit[t]
    state = len(states) - 1 if score[-1] >= score[-2] else len(states) - 2
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    return _spans(path, emit, tokens)


def _spans(path: np.ndarray, emit: np.ndarray, tokens: list[int]) -> list[TokenSpan]:
    """Token spans from the per-frame alignment states (odd state 2i + 1 is token i)."""
    spans = []
    for i, token in enumerate(tokens):
        where = np.nonzero(path == 2 * i + 1)[0]
        if where.size == 0:  # only when the path could not reach it (posteriors cut short)
            start = spans[-1].end if spans else 0
            spans.append(TokenSpan(token, start, start, 0.0))
            continue
        best = float(np.exp(emit[where, 2 * i + 1].max()))
        spans.append(TokenSpan(token, int(where[0]), int(where[-1]) + 1, best))
    return spans
