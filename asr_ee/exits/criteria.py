"""Exit criteria: pure functions of an exit's CTC posteriors (and of the earlier exits' outputs, for
patience and the learned gate). One implementation serves batch evaluation (per utterance) and
streaming (per chunk).

:data:`CRITERIA` is the one registry of criterion names: argparse choices, evaluation's policies,
default thresholds and sweeps, and the report's labels all read it. A new criterion is a value
function and one :class:`CriterionSpec` entry here (a learned one adds its model's module).

Shapes: T frames (of an utterance or a chunk), V vocabulary, D model dim. Log-posteriors are (T, V).

Values are computed in numpy (imports no torch): the recognizer hands numpy posteriors from either
backend (the torch encoder's outputs converted, the ONNX runtime's as they come), and evaluation's
CPU tensors are read as numpy arrays without a copy, so both score every exit alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Literal, Protocol, Sequence

import numpy as np

from asr_ee.config import ConfigError

__all__ = ["ExitView", "CriterionSpec", "CRITERIA", "CRITERION_NAMES", "DEFAULT_THRESHOLDS", "DEFAULT_SWEEPS",
           "ExitCriterion", "ExitSelector", "ExitModel", "mean_normalized_entropy", "posterior_confidence",
           "frame_argmax", "criterion_spec", "as_array", "is_hold", "hold_floor", "hold_exits"]


def as_array(x: Any) -> np.ndarray:
    """A numpy view of posteriors or hidden states: numpy as is, a torch tensor without a copy
    where it is a CPU float32 one."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu()
        return (x.float() if x.is_floating_point() else x).numpy()
    return np.asarray(x)


def mean_normalized_entropy(log_probs: Any) -> float:
    """Mean over frames of the posterior entropy divided by log(V): 0 = certain, 1 = uniform."""
    lp = as_array(log_probs)
    if lp.size == 0:
        return 0.0
    entropy = -(np.exp(lp) * lp).sum(-1)  # (T,)
    return float(entropy.mean() / math.log(lp.shape[-1]))


def posterior_confidence(log_probs: Any, reduce: Literal["mean", "min"] = "mean") -> float:
    """Mean (or minimum) over frames of the highest posterior probability."""
    lp = as_array(log_probs)
    if lp.size == 0:
        return 1.0
    best = np.exp(lp.max(-1))  # (T,)
    return float(best.mean() if reduce == "mean" else best.min())


def frame_argmax(log_probs: Any) -> np.ndarray:
    """(T, V) -> (T,) best token per frame (blanks included): what patience compares."""
    return as_array(log_probs).argmax(-1)


@dataclass
class ExitView:
    """What a criterion sees of one exit on one chunk (or utterance).

    Attributes:
        log_probs: (T, V) the exit's log-posteriors (numpy; a tensor given is read as numpy).
        hidden: (T, D) the encoder hidden states the exit head read; None where they are not kept.
    """

    log_probs: np.ndarray
    hidden: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.log_probs = as_array(self.log_probs)
        if self.hidden is not None:
            self.hidden = as_array(self.hidden)

    @cached_property
    def argmax(self) -> np.ndarray:
        """(T,) best token per frame."""
        return frame_argmax(self.log_probs)


class ExitModel(Protocol):
    """A learned criterion's parameters (the gate): a value from this exit and the earlier ones."""

    def value(self, exit_index: int, view: ExitView, history: Sequence[ExitView]) -> float: ...


# value(this exit, earlier exits, learned model or None) -> the criterion's score
ValueFn = Callable[[ExitView, Sequence[ExitView], Any], float]


def _patience(view: ExitView, history: Sequence[ExitView], model: Any) -> float:
    agree = 0
    for previous in reversed(history):
        if previous.argmax.shape != view.argmax.shape or not bool((previous.argmax == view.argmax).all()):
            break
        agree += 1
    return float(agree)


def _gate(view: ExitView, history: Sequence[ExitView], model: Any) -> float:
    if model is None:
        raise ConfigError("criterion 'gate' needs a trained gate (`asr-ee train-gate`); none was given")
    return model.value(len(history), view, history)


@dataclass(frozen=True)
class CriterionSpec:
    """One exit criterion.

    Attributes:
        name: what configs and command lines call it.
        label: how reports and plots call it.
        value: its score of an exit (:data:`ValueFn`).
        accepts: ``below`` (stop when value <= threshold) or ``above`` (value >= threshold).
        default_threshold: the threshold commands use when none is given (None: one must be given).
        sweep: the thresholds evaluation reports by default (empty for ``fixed``: every exit index).
        integer: thresholds are counts (the value is compared with ``int(threshold)``).
        plotted: drawn as a line on the WER-against-compute plot (``fixed`` is the per-exit points).
        needs_model: a learned criterion: it needs a model (the gate) beside the threshold.
    """

    name: str
    label: str
    value: ValueFn
    accepts: Literal["below", "above"]
    default_threshold: float | None
    sweep: tuple[float, ...]
    integer: bool = False
    plotted: bool = True
    needs_model: bool = False


# Default thresholds: entropy and confidence were chosen on the shipped model's dev split streamed
# with the default copy policy (benchmarks/streaming_rtf.py; figures in README, "Streaming"): the
# cheapest threshold costing less than a tenth more WER than full depth, rechecked with each shipped
# model. confidence_min and patience were chosen the same way per chunk on the dev split of an
# earlier model. The gate's is its probability that the exit matches the reference exit, chosen by
# the same rule on the shipped model's dev split per chunk with beam + LM (0.9: -0.8% WER at 0.717 of
# the compute; test: +8.0% at 0.714, where entropy 0.01 costs +5.7% at 0.871). The shipped model's
# own default criterion is in its file (gate 0.9, scripts/stamp_defaults.py); StreamingConfig's
# default stays entropy, which needs no trained model.
CRITERIA: dict[str, CriterionSpec] = {spec.name: spec for spec in (
    CriterionSpec("entropy", "entropy", lambda v, h, m: mean_normalized_entropy(v.log_probs), "below", 0.01,
                  (0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.4)),
    CriterionSpec("confidence", "confidence (mean)", lambda v, h, m: posterior_confidence(v.log_probs, "mean"),
                  "above", 0.99, (0.995, 0.99, 0.97, 0.95, 0.9, 0.8, 0.7)),
    CriterionSpec("confidence_min", "confidence (min)", lambda v, h, m: posterior_confidence(v.log_probs, "min"),
                  "above", 0.9, (0.9, 0.7, 0.5, 0.3, 0.2, 0.1)),
    CriterionSpec("patience", "patience (PABEE)", _patience, "above", 2.0, (1, 2, 3), integer=True),
    CriterionSpec("fixed", "fixed exit", lambda v, h, m: float(len(h)), "above", None, (), integer=True,
                  plotted=False),
    CriterionSpec("gate", "learned gate", _gate, "above", 0.9, (0.99, 0.97, 0.95, 0.9, 0.8, 0.7, 0.5),
                  needs_model=True),
)}
CRITERION_NAMES: tuple[str, ...] = tuple(CRITERIA)
DEFAULT_THRESHOLDS: dict[str, float] = {n: s.default_threshold for n, s in CRITERIA.items()
                                        if s.default_threshold is not None}
# Threshold sweeps the evaluation reports by default.
DEFAULT_SWEEPS: dict[str, list[float]] = {n: list(s.sweep) for n, s in CRITERIA.items() if s.sweep}


def criterion_spec(name: str) -> CriterionSpec:
    """The registered criterion ``name``; a ConfigError naming the choices otherwise."""
    if name not in CRITERIA:
        raise ConfigError(f"unknown exit criterion {name!r}; choose from {list(CRITERIA)}")
    return CRITERIA[name]


@dataclass(frozen=True)
class ExitCriterion:
    """When is an exit good enough? ``kind`` names a :data:`CRITERIA` entry:

    * ``entropy``: stop when the mean normalized entropy is <= ``threshold``.
    * ``confidence``: stop when the mean per-frame max probability is >= ``threshold``.
    * ``confidence_min``: stop when the minimum per-frame max probability is >= ``threshold``.
    * ``patience``: stop when the frame-level greedy outputs of the last ``int(threshold)`` + 1 exits
      agree (PABEE); ``threshold=1`` stops as soon as two consecutive exits agree.
    * ``fixed``: stop at exit index ``int(threshold)``.
    * ``gate``: stop when the learned gate (:mod:`asr_ee.exits.gate`) gives this exit a probability
      >= ``threshold`` of matching the last exit.

    The last exit (or the cap) always stops; that is the caller's job.
    """

    kind: str
    threshold: float

    def __post_init__(self) -> None:
        criterion_spec(self.kind)

    @property
    def spec(self) -> CriterionSpec:
        return CRITERIA[self.kind]

    def value(self, log_probs: Any, history: Sequence[ExitView], hidden: Any = None,
              model: ExitModel | None = None) -> float:
        """The criterion's score for this exit (entropy, confidence, agreeing-exit count, ...)."""
        return self.spec.value(ExitView(log_probs, hidden), history, model)

    def accepts(self, value: float) -> bool:
        if self.spec.accepts == "below":
            return value <= self.threshold
        return value >= (int(self.threshold) if self.spec.integer else self.threshold)

    def __str__(self) -> str:
        return f"{self.kind}@{self.threshold:g}"


def is_hold(value: Any) -> bool:
    """A valid hold: a chunk count (an int, not a bool) >= 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def hold_floor(previous: Sequence[int], hold: int) -> int:
    """The shallowest exit a chunk may stop at: the deepest the criterion chose on the last ``hold``
    chunks (``previous``: those choices, oldest first), 0 without any."""
    recent = list(previous)[-hold:] if hold > 0 else []
    return max(recent, default=0)


def hold_exits(chosen: Sequence[int], hold: int) -> tuple[int, ...]:
    """Per chunk, the exit a policy with ``hold`` takes from the criterion's own choices ``chosen``:
    the deeper of its choice and :func:`hold_floor` of the chunks before (what a stream does)."""
    return tuple(max(chosen[max(0, j - hold): j + 1]) for j in range(len(chosen)))


@dataclass
class ExitSelector:
    """Walks the exits of one chunk (or utterance): call :meth:`decide` after each exit.

    Usable directly as the ``decide`` callback of ``EarlyExitEncoder.infer`` (single stream).
    Records each exit's criterion value in ``values``. ``model``: the learned criterion's model.
    ``floor``: the chunk stops no shallower than this exit even when the criterion accepts one
    before it (a stream's hold, :func:`hold_floor`); ``chosen`` is the criterion's own choice, the
    first exit it accepted (None before any).
    """

    criterion: ExitCriterion
    model: ExitModel | None = None
    floor: int = 0
    history: list[ExitView] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    chosen: int | None = None

    def __post_init__(self) -> None:
        if self.criterion.spec.needs_model and self.model is None:
            raise ConfigError(f"criterion {self.criterion.kind!r} needs a trained model; none was given")

    def __call__(self, exit_index: int, log_probs: Any, hidden: Any = None) -> bool:
        return self.decide(exit_index, log_probs, hidden)

    def decide(self, exit_index: int, log_probs: Any, hidden: Any = None) -> bool:
        """log_probs: (T, V) or (1, T, V); hidden: (T, D) or (1, T, D) or None (numpy or tensors)."""
        view = ExitView(log_probs[0] if log_probs.ndim == 3 else log_probs,
                        None if hidden is None else hidden[0] if hidden.ndim == 3 else hidden)
        value = self.criterion.spec.value(view, self.history, self.model)
        self.values.append(value)
        self.history.append(view)
        if self.chosen is None and self.criterion.accepts(value):
            self.chosen = exit_index
        return self.chosen is not None and exit_index >= self.floor
