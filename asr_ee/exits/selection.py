"""Choosing an exit per segment (the whole utterance, or each chunk) from every exit's posteriors.

Selection only: each criterion's value is computed once per exit and segment with the same
:class:`~asr_ee.exits.criteria.ExitSelector` streaming uses, and every threshold reads it. Batch
evaluation (:mod:`asr_ee.evaluation`) and the oracle-bound scripts share these functions.

A per-chunk policy may *hold* depth (``Policy.hold``, :func:`~asr_ee.exits.criteria.hold_exits`):
each chunk goes at least as deep as the deepest exit its criterion chose on the ``hold`` chunks
before it. Causal, so a stream does the same (``StreamingConfig.hold_chunks``): hard stretches
of speech outlast a 320 ms chunk, and a chunk after a hard one is likely hard too.

The oracle is a bound, not a deployable policy: it needs the last exit. Per utterance it takes the
shallowest exit whose decoded tokens equal the last exit's; per chunk, the shallowest exit whose
frame-wise best tokens equal the last exit's on that chunk.

Shapes: T' encoder frames, V vocabulary. Log-posteriors are (T', V).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch

from asr_ee.config import ConfigError
from asr_ee.exits.criteria import (CRITERIA, CRITERION_NAMES, ExitCriterion, ExitModel, ExitSelector, frame_argmax,
                                   hold_exits, is_hold)

__all__ = ["Granularity", "GRANULARITIES", "PolicyKind", "POLICY_KINDS", "UNLEARNED_POLICY_KINDS", "Policy",
           "segment_bounds", "criterion_values", "first_accepted", "hold_exits", "oracle_exit",
           "splice_posteriors", "choose_exits"]

Granularity = Literal["utterance", "chunk"]
PolicyKind = str  # a criterion name (exits.criteria.CRITERIA) or "oracle"

GRANULARITIES: tuple[Granularity, ...] = ("utterance", "chunk")
POLICY_KINDS: tuple[PolicyKind, ...] = (*CRITERION_NAMES, "oracle")
# what evaluation runs when no criteria are named: the learned ones (the gate) need their model given
UNLEARNED_POLICY_KINDS: tuple[PolicyKind, ...] = (*(n for n in CRITERION_NAMES if not CRITERIA[n].needs_model),
                                                  "oracle")


@dataclass(frozen=True)
class Policy:
    """An exit criterion at one threshold, or the oracle (``kind="oracle"``, no threshold).
    ``hold``: per chunk, go at least as deep as the criterion chose on the ``hold`` chunks before
    (:func:`hold_exits`; 0 = each chunk on its own)."""

    kind: PolicyKind
    threshold: float | None = None
    hold: int = 0

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise ConfigError(f"unknown exit criterion {self.kind!r}; choose from {list(POLICY_KINDS)}")
        if (self.kind == "oracle") != (self.threshold is None):
            raise ConfigError(f"{self.kind}: the oracle takes no threshold, every other criterion needs one")
        if not is_hold(self.hold) or (self.hold and self.kind == "oracle"):
            raise ConfigError(f"{self.kind}: hold must be a chunk count >= 0 (and 0 for the oracle), got {self.hold!r}")

    @property
    def name(self) -> str:
        if self.threshold is None:
            return "oracle"
        return f"{self.kind}@{self.threshold:g}" + (f"+hold{self.hold}" if self.hold else "")

    def criterion(self) -> ExitCriterion:
        if self.threshold is None:
            raise ValueError("the oracle is not an ExitCriterion: it needs the last exit")
        return ExitCriterion(self.kind, self.threshold)


def segment_bounds(num_frames: int, chunk_frames: int | None) -> list[tuple[int, int]]:
    """[start, end) frame ranges: the whole utterance (``chunk_frames=None``) or its chunks."""
    if chunk_frames is None:
        return [(0, num_frames)]
    return [(s, min(s + chunk_frames, num_frames)) for s in range(0, num_frames, chunk_frames)]


def criterion_values(kind: str, exit_log_probs: Sequence[torch.Tensor], hidden: Sequence[torch.Tensor] | None = None,
                     model: ExitModel | None = None) -> list[float]:
    """Each exit's value of criterion ``kind`` on (T', V) posteriors (and the (T', D) hidden states
    the exit heads read, for the gate); thresholds do not change it. ``model``: the learned one's."""
    selector = ExitSelector(ExitCriterion(kind, 0.0), model=model)
    for k, log_probs in enumerate(exit_log_probs):
        selector.decide(k, log_probs, None if hidden is None else hidden[k])
    return selector.values


def first_accepted(criterion: ExitCriterion, values: Sequence[float]) -> int:
    """The first exit whose value the criterion accepts; the last exit always stops."""
    return next((k for k, v in enumerate(values) if criterion.accepts(v)), len(values) - 1)


def oracle_exit(outputs: Sequence[Sequence[int]], min_exit: int = 0) -> int:
    """The shallowest exit (from ``min_exit`` on) whose output equals the last exit's."""
    start = min(min_exit, len(outputs) - 1)
    return next(k for k in range(start, len(outputs)) if list(outputs[k]) == list(outputs[-1]))


def splice_posteriors(exit_lps: Sequence[torch.Tensor], exits: Sequence[int],
                      bounds: Sequence[tuple[int, int]]) -> torch.Tensor:
    """(T', V): segment j of the utterance taken from exit ``exits[j]``'s posteriors."""
    return torch.cat([exit_lps[k][s:e] for k, (s, e) in zip(exits, bounds)])


def choose_exits(exit_lps: list[torch.Tensor], bounds: list[tuple[int, int]], policies: list[Policy],
                 granularity: Granularity, tokens: dict[str, list[list[int]]],
                 hidden: list[torch.Tensor] | None = None, model: ExitModel | None = None
                 ) -> dict[tuple[Policy, str], tuple[int, ...]]:
    """Exit index per segment (``bounds``) for every (policy, decoding).

    Args:
        exit_lps: per exit, (T', V) log-posteriors of one utterance.
        bounds: the segments, from :func:`segment_bounds`.
        granularity: ``utterance`` (one segment: the oracle compares decoded tokens) or ``chunk``
            (the oracle compares frame-wise best tokens per chunk).
        tokens: per decoding, each exit's decoded tokens (the utterance oracle's outputs).
        hidden: per exit, (T', D) the hidden states its head read (the gate's features).
        model: the learned criterion's model (the gate), for ``gate`` policies.
    """
    kinds = {p.kind for p in policies if p.kind != "oracle"}
    values = {kind: [criterion_values(kind, [lp[s:e] for lp in exit_lps],
                                      None if hidden is None else [h[s:e] for h in hidden], model)
                     for s, e in bounds] for kind in kinds}
    chunk_oracle = tuple(oracle_exit([frame_argmax(lp[s:e]).tolist() for lp in exit_lps]) for s, e in bounds)
    chosen: dict[tuple[Policy, str], tuple[int, ...]] = {}
    for policy in policies:
        if policy.hold and granularity == "utterance":
            continue  # one segment: nothing to hold
        if policy.kind != "oracle":
            exits = tuple(first_accepted(policy.criterion(), v) for v in values[policy.kind])
            if granularity == "chunk" and policy.hold:
                exits = hold_exits(exits, policy.hold)
        for decoding in tokens:
            if policy.kind == "oracle":
                exits = (oracle_exit(tokens[decoding]),) if granularity == "utterance" else chunk_oracle
            chosen[(policy, decoding)] = exits
    return chosen
