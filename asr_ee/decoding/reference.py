"""The hand-written CTC prefix beam search (pure Python) that :mod:`asr_ee.decoding.ctc` replaced
with flashlight-text: kept only as a reference, for the tests that compare the two and for
``benchmarks/decoding_speed.py`` (old against new). The library does not use it.

It fuses the token LM as :class:`~asr_ee.decoding.lm.NgramLM` (Kneser-Ney counts, torch to load),
scoring each token a prefix adds.

Shapes: T frames, V vocabulary; blank id 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import torch

from asr_ee.decoding.lm import NgramLM

__all__ = ["reference_greedy_decode", "reference_prefix_beam_search", "ReferenceBeamDecoder"]

BLANK = 0


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def reference_greedy_decode(log_probs: torch.Tensor, blank: int = BLANK) -> list[int]:
    """(T, V) -> token ids: the old greedy decoder (its incremental loop over frames, on torch)."""
    tokens: list[int] = []
    state = {"last": blank, "frames": 0, "trailing_blank_frames": 0}
    for t in torch.as_tensor(log_probs).argmax(-1).tolist():
        if t != blank and t != state["last"]:
            tokens.append(t)
        state["trailing_blank_frames"] = state["trailing_blank_frames"] + 1 if t == blank else 0
        state["last"] = t
        state["frames"] += 1
    return tokens


def reference_prefix_beam_search(log_probs: torch.Tensor, beam: int = 4, blank: int = BLANK,
                                 lm: NgramLM | None = None, lm_weight: float = 0.0,
                                 length_bonus: float = 0.0) -> list[int]:
    """(T, V) -> token ids of the best prefix (CTC prefix beam search, optionally with a token LM)."""
    decoder = ReferenceBeamDecoder(beam=beam, blank=blank, lm=lm, lm_weight=lm_weight, length_bonus=length_bonus)
    decoder.accept(log_probs)
    return decoder.tokens


@dataclass
class ReferenceBeamDecoder:
    """Incremental CTC prefix beam search over chunks, with optional shallow fusion of a token LM.

    Each prefix keeps (log P ending in blank, log P ending in non-blank). With ``lm`` a prefix is
    ranked by ``log P_ctc + lm_weight * log P_lm + length_bonus * len(prefix)``; the LM scores each
    token as the prefix grows (the insertion bonus offsets the LM's per-token cost).
    """

    beam: int = 4
    blank: int = BLANK
    prune_top_k: int = 8
    prune_log_ratio: float = 10.0  # per frame, skip tokens this far (nats) below the frame's best
    lm: NgramLM | None = None
    lm_weight: float = 0.0
    length_bonus: float = 0.0
    beams: dict[tuple[int, ...], tuple[float, float]] = field(default_factory=lambda: {(): (0.0, -math.inf)})
    frames: int = 0
    trailing_blank_frames: int = 0
    _lm: dict[tuple[int, ...], tuple[float, tuple[int, ...]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.lm is not None and not self._lm:
            self._lm[()] = (0.0, self.lm.start())

    def accept(self, log_probs: torch.Tensor) -> None:
        log_probs = torch.as_tensor(log_probs)
        k = min(self.prune_top_k, log_probs.size(-1))
        top_lp, top_ids = log_probs.topk(k, dim=-1)
        for lps, ids in zip(top_lp.tolist(), top_ids.tolist()):
            keep = sum(1 for lp in lps if lp >= lps[0] - self.prune_log_ratio)
            self._step(lps[:keep], ids[:keep])
            best_frame_token = ids[0]
            self.trailing_blank_frames = self.trailing_blank_frames + 1 if best_frame_token == self.blank else 0
            self.frames += 1

    def _lm_of(self, prefix: tuple[int, ...]) -> tuple[float, tuple[int, ...]]:
        """(summed LM log-prob, LM state) of a prefix, extending its parent's on first sight."""
        known = self._lm.get(prefix)
        if known is None:
            assert self.lm is not None
            parent_score, parent_state = self._lm_of(prefix[:-1])
            known = (parent_score + self.lm.log_prob(parent_state, prefix[-1]),
                     self.lm.advance(parent_state, prefix[-1]))
            self._lm[prefix] = known
        return known

    def score(self, prefix: tuple[int, ...], pb: float, pnb: float) -> float:
        """The ranking score of a prefix (CTC alone without an LM)."""
        total = _logaddexp(pb, pnb)
        if self.lm is None:
            return total
        return total + self.lm_weight * self._lm_of(prefix)[0] + self.length_bonus * len(prefix)

    def _step(self, lps: list[float], ids: list[int]) -> None:
        if len(ids) == 1 and ids[0] == self.blank:
            # Only blank survives pruning: every prefix gains the same log-prob, so the ranking
            # (already sorted, at most `beam` long) stands; the full step below gives the same beams.
            lp = lps[0]
            self.beams = {p: (_logaddexp(pb, pnb) + lp, -math.inf) for p, (pb, pnb) in self.beams.items()}
            return
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pnb) in self.beams.items():
            total = _logaddexp(pb, pnb)
            for lp, tok in zip(lps, ids):
                if tok == self.blank:
                    entry = nxt[prefix]
                    entry[0] = _logaddexp(entry[0], total + lp)
                    continue
                last = prefix[-1] if prefix else None
                extended = prefix + (tok,)
                entry = nxt[extended]
                if tok == last:
                    entry[1] = _logaddexp(entry[1], pb + lp)     # repeat after blank: new token
                    same = nxt[prefix]
                    same[1] = _logaddexp(same[1], pnb + lp)      # repeat collapses
                else:
                    entry[1] = _logaddexp(entry[1], total + lp)
        ranked = sorted(nxt.items(), key=lambda kv: self.score(kv[0], *kv[1]), reverse=True)[: self.beam]
        self.beams = {p: (v[0], v[1]) for p, v in ranked}
        if self.lm is not None and len(self._lm) > 64 * self.beam:   # forget pruned prefixes' LM scores
            self._lm = {p: self._lm[p] for p in self.beams}             # (a new prefix extends a kept one)

    @property
    def tokens(self) -> list[int]:
        best = max(self.beams.items(), key=lambda kv: self.score(kv[0], *kv[1]))
        return list(best[0])
