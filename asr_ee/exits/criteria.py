"""Exit criteria: pure functions of an exit's CTC posteriors (and, for patience, of the earlier
exits' outputs). One implementation serves batch evaluation (per utterance) and streaming (per
chunk).

Shapes: T frames (of an utterance or a chunk), V vocabulary. Log-posteriors are (T, V).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

__all__ = ["CriterionKind", "ExitCriterion", "ExitSelector", "mean_normalized_entropy", "posterior_confidence",
           "frame_argmax", "DEFAULT_SWEEPS"]

CriterionKind = Literal["entropy", "confidence", "confidence_min", "patience", "fixed"]


def mean_normalized_entropy(log_probs: torch.Tensor) -> float:
    """Mean over frames of the posterior entropy divided by log(V): 0 = certain, 1 = uniform."""
    if log_probs.numel() == 0:
        return 0.0
    entropy = -(log_probs.exp() * log_probs).sum(-1)  # (T,)
    return float(entropy.mean() / math.log(log_probs.size(-1)))


def posterior_confidence(log_probs: torch.Tensor, reduce: Literal["mean", "min"] = "mean") -> float:
    """Mean (or minimum) over frames of the highest posterior probability."""
    if log_probs.numel() == 0:
        return 1.0
    best = log_probs.max(-1).values.exp()  # (T,)
    return float(best.mean() if reduce == "mean" else best.min())


def frame_argmax(log_probs: torch.Tensor) -> torch.Tensor:
    """(T, V) -> (T,) best token per frame (blanks included): what patience compares."""
    return log_probs.argmax(-1)


@dataclass(frozen=True)
class ExitCriterion:
    """When is an exit good enough?

    * ``entropy``: stop when the mean normalized entropy is <= ``threshold``.
    * ``confidence``: stop when the mean per-frame max probability is >= ``threshold``.
    * ``confidence_min``: stop when the minimum per-frame max probability is >= ``threshold``.
    * ``patience``: stop when the frame-level greedy outputs of the last ``int(threshold)`` + 1 exits
      agree (PABEE); ``threshold=1`` stops as soon as two consecutive exits agree.
    * ``fixed``: stop at exit index ``int(threshold)``.

    The last exit (or the cap) always stops; that is the caller's job.
    """

    kind: CriterionKind
    threshold: float

    def value(self, log_probs: torch.Tensor, history: list[torch.Tensor]) -> float:
        """The criterion's score for this exit (entropy, confidence, or agreeing-exit count)."""
        if self.kind == "entropy":
            return mean_normalized_entropy(log_probs)
        if self.kind == "confidence":
            return posterior_confidence(log_probs, "mean")
        if self.kind == "confidence_min":
            return posterior_confidence(log_probs, "min")
        if self.kind == "patience":
            current, agree = frame_argmax(log_probs), 0
            for previous in reversed(history):
                if not torch.equal(previous, current):
                    break
                agree += 1
            return float(agree)
        return float(len(history))  # fixed: the exit index

    def accepts(self, value: float) -> bool:
        if self.kind == "entropy":
            return value <= self.threshold
        if self.kind in ("confidence", "confidence_min"):
            return value >= self.threshold
        return value >= int(self.threshold)  # patience: agreeing exits; fixed: the exit index

    def __str__(self) -> str:
        return f"{self.kind}@{self.threshold:g}"


@dataclass
class ExitSelector:
    """Walks the exits of one chunk (or utterance): call :meth:`decide` after each exit.

    Usable directly as the ``decide`` callback of ``EarlyExitEncoder.infer`` (single stream).
    Records each exit's criterion value in ``values``.
    """

    criterion: ExitCriterion
    history: list[torch.Tensor] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def __call__(self, exit_index: int, log_probs: torch.Tensor) -> bool:
        return self.decide(exit_index, log_probs)

    def decide(self, exit_index: int, log_probs: torch.Tensor) -> bool:
        lp = log_probs[0] if log_probs.dim() == 3 else log_probs  # (T, V)
        value = self.criterion.value(lp, self.history)
        self.values.append(value)
        self.history.append(frame_argmax(lp))
        return self.criterion.accepts(value)


# Threshold sweeps the evaluation reports by default.
DEFAULT_SWEEPS: dict[str, list[float]] = {
    "entropy": [0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.4],
    "confidence": [0.995, 0.99, 0.97, 0.95, 0.9, 0.8, 0.7],
    "confidence_min": [0.9, 0.7, 0.5, 0.3, 0.2, 0.1],
    "patience": [1, 2, 3],
}
