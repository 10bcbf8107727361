"""How to evaluate: :class:`EvaluationConfig` and the policies (criterion, threshold) it sweeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from asr_ee.config import ConfigError
from asr_ee.decoding.lm import DEFAULT_LENGTH_BONUS, DEFAULT_LM_WEIGHT
from asr_ee.exits.criteria import DEFAULT_SWEEPS, is_hold
from asr_ee.exits.selection import POLICY_KINDS, UNLEARNED_POLICY_KINDS, Policy, PolicyKind

__all__ = ["Decoding", "DECODINGS", "EvaluationConfig"]

Decoding = Literal["greedy", "beam", "lm"]
DECODINGS: tuple[Decoding, ...] = ("greedy", "beam", "lm")


@dataclass
class EvaluationConfig:
    """How to evaluate.

    Attributes:
        decodings: CTC decoders to score: ``greedy``, ``beam`` (prefix beam search) and/or ``lm``
            (prefix beam search with a token n-gram LM fused, :mod:`asr_ee.decoding.lm`).
        beam: beam size of the prefix beam search.
        lm_weight: weight of the LM's log-probability (``lm`` decoding).
        length_bonus: per-token bonus offsetting the LM's cost (``lm`` decoding).
        chunk_frames: encoder frames (40 ms each) per chunk, for per-chunk exit decisions and for
            the chunk attention mask.
        attention: ``full`` (offline: every frame sees the whole utterance) or ``chunk`` (the
            streaming chunk mask of ``chunk_frames`` and ``left_context_chunks``).
        left_context_chunks: with ``attention: chunk``, chunks of left context; None: all.
        criteria: the criteria to sweep (``oracle`` included; by default every one but the learned
            ``gate``, which needs its model passed to :func:`~asr_ee.evaluation.evaluate`).
        thresholds: per criterion, thresholds replacing ``DEFAULT_SWEEPS``; ``fixed`` defaults to
            every exit index.
        hold_chunks: per-chunk policies are evaluated with each of these holds (a chunk at least as
            deep as its criterion chose on that many chunks before it; 0: each chunk on its own;
            see :func:`asr_ee.exits.criteria.hold_exits`); not for ``fixed`` and the oracle.
        batch_seconds: padded audio seconds per forward batch.
        window_utterances: utterances read and sorted by length at a time (bounds memory).
        device: torch device of the forward.
        progress: show a tqdm progress bar.
    """

    decodings: list[Decoding] = field(default_factory=lambda: ["greedy"])
    beam: int = 8
    lm_weight: float = DEFAULT_LM_WEIGHT
    length_bonus: float = DEFAULT_LENGTH_BONUS
    chunk_frames: int = 8
    attention: Literal["full", "chunk"] = "full"
    left_context_chunks: int | None = None
    criteria: list[PolicyKind] = field(default_factory=lambda: list(UNLEARNED_POLICY_KINDS))
    thresholds: dict[str, list[float]] = field(default_factory=dict)
    hold_chunks: list[int] = field(default_factory=lambda: [0])
    batch_seconds: float = 120.0
    window_utterances: int = 512
    device: str = "cpu"
    progress: bool = False

    def __post_init__(self) -> None:
        if not self.decodings or len(set(self.decodings)) != len(self.decodings) or \
                not set(self.decodings) <= set(DECODINGS):
            raise ConfigError(f"decodings {self.decodings} must be distinct values of {list(DECODINGS)}")
        for name in ("beam", "chunk_frames", "window_utterances"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.attention not in ("full", "chunk"):
            raise ConfigError(f"attention must be 'full' or 'chunk', got {self.attention!r}")
        if self.left_context_chunks is not None and (self.attention != "chunk" or self.left_context_chunks < 0):
            raise ConfigError("left_context_chunks needs attention 'chunk' and must be >= 0")
        if not self.hold_chunks or len(set(self.hold_chunks)) != len(self.hold_chunks) or \
                not all(map(is_hold, self.hold_chunks)):
            raise ConfigError(f"hold_chunks must be distinct chunk counts >= 0, got {self.hold_chunks!r}")
        if self.batch_seconds <= 0:
            raise ConfigError(f"batch_seconds must be positive, got {self.batch_seconds}")
        self._check_criteria()

    def _check_criteria(self) -> None:
        unknown = sorted(set(self.criteria) - set(POLICY_KINDS))
        if unknown:
            raise ConfigError(f"unknown criteria {unknown}; choose from {list(POLICY_KINDS)}")
        if len(set(self.criteria)) != len(self.criteria):
            raise ConfigError(f"criteria {self.criteria} name one more than once")
        stray = sorted(set(self.thresholds) - (set(self.criteria) - {"oracle"}))
        if stray:
            raise ConfigError(f"thresholds given for {stray}, which are not criteria with thresholds "
                              f"among {self.criteria}")
        for kind, values in self.thresholds.items():
            if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ConfigError(f"thresholds for {kind} must be a non-empty list of numbers, got {values!r}")

    def policies(self, num_exits: int) -> list[Policy]:
        """Every (criterion, threshold, hold) to report, in sweep order (holds innermost)."""
        out = []
        for kind in self.criteria:
            if kind == "oracle":
                out.append(Policy("oracle"))
                continue
            default = list(range(num_exits)) if kind == "fixed" else DEFAULT_SWEEPS[kind]
            values = self.thresholds.get(kind, default)
            if kind == "fixed" and any(v != int(v) or not 0 <= v < num_exits for v in values):
                raise ConfigError(f"fixed thresholds are exit indices 0..{num_exits - 1}, got {values}")
            holds = [0] if kind == "fixed" else self.hold_chunks  # a fixed exit holds itself
            out += [Policy(kind, float(v), h) for v in values for h in holds]
        return out
