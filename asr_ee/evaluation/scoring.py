"""Decoding and scoring one utterance: each exit's hypothesis, each policy's spliced hypothesis, and
their word errors, from the utterance's per-exit posteriors.

Shapes: T' encoder frames (40 ms), V vocabulary.
"""

from __future__ import annotations

import torch

from asr_ee.data.tokenizer import Tokenizer
from asr_ee.decoding.ctc import greedy_decode, prefix_beam_search
from asr_ee.decoding.lm import NgramLM
from asr_ee.decoding.wer import WordErrors, word_errors
from asr_ee.evaluation.config import EvaluationConfig
from asr_ee.evaluation.results import PolicyOutcome, Selection, UtteranceResult
from asr_ee.exits.criteria import ExitModel
from asr_ee.exits.selection import GRANULARITIES, Policy, choose_exits, segment_bounds, splice_posteriors
from asr_ee.features import SAMPLE_RATE
from asr_ee.inputs import Utterance

__all__ = ["Decoder", "visible_keys", "score_utterance"]


class Decoder:
    """The configured CTC decoders (greedy, beam, beam + LM) on (T', V) posteriors."""

    def __init__(self, tokenizer: Tokenizer, cfg: EvaluationConfig, lm: NgramLM | None) -> None:
        self.tokenizer, self.cfg, self.lm = tokenizer, cfg, lm

    def tokens(self, log_probs: torch.Tensor, decoding: str) -> list[int]:
        if decoding == "greedy":
            return greedy_decode(log_probs, blank=self.tokenizer.blank_id)
        if decoding == "lm":
            return prefix_beam_search(log_probs, beam=self.cfg.beam, blank=self.tokenizer.blank_id, lm=self.lm,
                                      lm_weight=self.cfg.lm_weight, length_bonus=self.cfg.length_bonus)
        return prefix_beam_search(log_probs, beam=self.cfg.beam, blank=self.tokenizer.blank_id)

    def text(self, log_probs: torch.Tensor, decoding: str) -> str:
        return self.tokenizer.decode(self.tokens(log_probs, decoding))


def _spliced_text(exits: tuple[int, ...], bounds: list[tuple[int, int]], exit_lps: list[torch.Tensor],
                  decoding: str, texts: list[str], decoder: Decoder, cache: dict) -> str:
    """Hypothesis of the chosen exits' posteriors, segment by segment (one exit: its own text)."""
    if not exits or len(set(exits)) == 1:
        return texts[exits[0] if exits else -1]
    key = (decoding, exits)
    if key not in cache:
        cache[key] = decoder.text(splice_posteriors(exit_lps, exits, bounds), decoding)
    return cache[key]


def visible_keys(num_frames: int, chunk_frames: int | None, left_context_chunks: int | None) -> int:
    """Sum over frames of the key frames each may attend to under the chunk mask (see masks.py)."""
    if chunk_frames is None:
        return num_frames * num_frames
    chunk = torch.arange(num_frames) // chunk_frames
    end = torch.clamp((chunk + 1) * chunk_frames, max=num_frames)
    start = torch.zeros_like(chunk) if left_context_chunks is None else \
        torch.clamp((chunk - left_context_chunks) * chunk_frames, min=0)
    return int((end - start).sum())


def score_utterance(index: int, utt: Utterance, num_samples: int, exit_lps: list[torch.Tensor],
                    policies: list[Policy], cfg: EvaluationConfig, decoder: Decoder,
                    hidden: list[torch.Tensor] | None = None, gate: ExitModel | None = None) -> UtteranceResult:
    """Everything one utterance contributes, from its per-exit posteriors [(T', V)] (and, for the
    ``gate``, the per-exit hidden states [(T', D)] its heads read, and the gate)."""
    num_frames = exit_lps[0].size(0)
    tokens = {d: [decoder.tokens(lp, d) for lp in exit_lps] for d in cfg.decodings}
    texts = {d: [decoder.tokenizer.decode(t) for t in toks] for d, toks in tokens.items()}
    ref = utt.reference
    aligned: dict[str, WordErrors] = {}

    def errors(hyp: str) -> WordErrors:  # many policies give the same hypothesis: align it once
        assert ref is not None
        if hyp not in aligned:
            aligned[hyp] = word_errors(ref, hyp)
        return aligned[hyp]

    outcomes: list[PolicyOutcome] = []
    cache: dict[tuple[str, tuple[int, ...]], str] = {}  # spliced hypotheses, shared by granularities
    for granularity in GRANULARITIES:
        bounds = segment_bounds(num_frames, None if granularity == "utterance" else cfg.chunk_frames)
        frames = tuple(e - s for s, e in bounds)
        for (policy, d), exits in choose_exits(exit_lps, bounds, policies, granularity, tokens, hidden, gate).items():
            hyp = _spliced_text(exits, bounds, exit_lps, d, texts[d], decoder, cache)
            outcomes.append(PolicyOutcome(policy, granularity, d, Selection(exits, frames),
                                          None if ref is None else errors(hyp)))
    exit_errors = {} if ref is None else {d: [errors(h) for h in hyps] for d, hyps in texts.items()}
    mask_chunk = cfg.chunk_frames if cfg.attention == "chunk" else None
    return UtteranceResult(index, utt.id, utt.source, ref, num_samples / SAMPLE_RATE, num_frames, texts,
                           exit_errors, outcomes, visible_keys(num_frames, mask_chunk, cfg.left_context_chunks))
