"""What an evaluation gives back: per utterance, per-exit hypotheses and each policy's choices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from asr_ee.decoding.wer import WordErrors
from asr_ee.evaluation.config import Decoding
from asr_ee.exits.selection import GRANULARITIES, Granularity, Policy

__all__ = ["Failure", "Selection", "PolicyOutcome", "UtteranceResult", "EvaluationResult"]


@dataclass
class Failure:
    """An utterance that could not be evaluated, and why."""

    id: str
    source: str
    error: str


@dataclass
class Selection:
    """Exit index chosen for each segment (the utterance, or each chunk), and the segments' frames."""

    exits: tuple[int, ...]
    frames: tuple[int, ...]


@dataclass
class PolicyOutcome:
    """One (policy, granularity, decoding): the exits it chose and the word errors of their hypothesis."""

    policy: Policy
    granularity: Granularity
    decoding: Decoding
    selection: Selection
    errors: WordErrors | None  # None without a reference


@dataclass
class UtteranceResult:
    """What one utterance gave: per-exit hypotheses and each policy's choices.

    Attributes:
        hypotheses: per decoding, one hypothesis per exit.
        exit_errors: per decoding, word errors per exit (empty without a reference).
        visible_keys: attention keys seen, summed over encoder frames (for the FLOPs context).
    """

    index: int
    id: str
    source: str
    reference: str | None
    duration_seconds: float
    encoder_frames: int
    hypotheses: dict[str, list[str]]
    exit_errors: dict[str, list[WordErrors]]
    outcomes: list[PolicyOutcome]
    visible_keys: int

    def to_dict(self, exit_layers: Sequence[int]) -> dict[str, Any]:
        """The ``utterances.jsonl`` record; choices are exit layers (a list per chunk when chunked).

        The oracle's label carries the decoding (``oracle/greedy``): its choice depends on it.
        """
        choices: dict[str, dict[str, Any]] = {g: {} for g in GRANULARITIES}
        for o in self.outcomes:
            label = f"oracle/{o.decoding}" if o.policy.kind == "oracle" else o.policy.name
            layers = [exit_layers[k] for k in o.selection.exits]
            choices[o.granularity][label] = layers[0] if o.granularity == "utterance" else layers
        return {"id": self.id, "source": self.source, "reference": self.reference,
                "duration_seconds": round(self.duration_seconds, 3), "encoder_frames": self.encoder_frames,
                "exit_layers": list(exit_layers), "hypotheses": self.hypotheses,
                "word_errors": {d: [e.errors for e in errs] for d, errs in self.exit_errors.items()},
                "choices": choices}


@dataclass
class EvaluationResult:
    """``summary`` is the ``results.json`` content; ``utterances`` the per-utterance records."""

    summary: dict[str, Any]
    utterances: list[UtteranceResult]

    @property
    def num_evaluated(self) -> int:
        return len(self.utterances)
