"""Every criterion at its threshold: a value equal to the threshold stops (entropy: value <= t;
confidence, patience, fixed, gate: value >= t); the nearest value on the wrong side does not."""

from __future__ import annotations

import math
from typing import Sequence

import pytest
import torch

from asr_ee.exits.criteria import CRITERIA, ExitCriterion, ExitSelector, ExitView
from asr_ee.exits.selection import first_accepted


def _log_probs(seed: int, frames: int = 5, vocab: int = 7) -> torch.Tensor:
    torch.manual_seed(seed)
    return (3 * torch.randn(frames, vocab)).log_softmax(-1)


class _Gate:
    """A stand-in learned gate: its value is a fixed probability per exit."""

    def __init__(self, values: Sequence[float]) -> None:
        self.values = list(values)

    def value(self, exit_index: int, view: ExitView, history: Sequence[ExitView]) -> float:
        return self.values[exit_index]


@pytest.mark.parametrize("kind", ["entropy", "confidence", "confidence_min"])
def test_a_value_equal_to_the_threshold_stops(kind: str) -> None:
    lp = _log_probs(1)
    value = ExitCriterion(kind, 0.5).value(lp, [])
    assert 0.0 < value < 1.0
    at = ExitSelector(ExitCriterion(kind, value))
    assert at.decide(0, lp) and at.values == [value]
    # the nearest threshold on the strict side: the same posteriors no longer stop
    stricter = math.nextafter(value, -math.inf if CRITERIA[kind].accepts == "below" else math.inf)
    assert not ExitSelector(ExitCriterion(kind, stricter)).decide(0, lp)
    looser = math.nextafter(value, math.inf if CRITERIA[kind].accepts == "below" else -math.inf)
    assert ExitSelector(ExitCriterion(kind, looser)).decide(0, lp)


def test_directions() -> None:
    assert ExitCriterion("entropy", 0.1).accepts(0.1) and not ExitCriterion("entropy", 0.1).accepts(0.1000001)
    assert ExitCriterion("confidence", 0.9).accepts(0.9) and not ExitCriterion("confidence", 0.9).accepts(0.8999999)
    assert ExitCriterion("confidence_min", 0.3).accepts(0.3)
    assert not ExitCriterion("confidence_min", 0.3).accepts(0.2999999)


def test_patience_stops_when_exactly_threshold_exits_agree() -> None:
    same, other = _log_probs(2), _log_probs(3)
    assert not torch.equal(same.argmax(-1), other.argmax(-1))
    selector = ExitSelector(ExitCriterion("patience", 2))
    decisions = [selector.decide(k, lp) for k, lp in enumerate([other, same, same, same])]
    assert selector.values == [0.0, 0.0, 1.0, 2.0]
    assert decisions == [False, False, False, True]  # 2 agreeing earlier exits = the threshold: stop
    assert ExitCriterion("patience", 2.7).accepts(2.0)  # counts: the threshold is taken as int
    assert not ExitCriterion("patience", 3).accepts(2.0)


def test_fixed_stops_at_its_exit_index() -> None:
    selector = ExitSelector(ExitCriterion("fixed", 2))
    assert [selector.decide(k, _log_probs(k)) for k in range(4)] == [False, False, True, True]
    assert first_accepted(ExitCriterion("fixed", 2), [0.0, 1.0, 2.0, 3.0]) == 2


def test_gate_at_its_threshold() -> None:
    gate = _Gate([0.5, 0.9, 0.95])
    selector = ExitSelector(ExitCriterion("gate", 0.9), model=gate)
    assert [selector.decide(k, _log_probs(k)) for k in range(3)] == [False, True, True]
    strict = ExitSelector(ExitCriterion("gate", math.nextafter(0.9, 1.0)), model=gate)
    assert [strict.decide(k, _log_probs(k)) for k in range(3)] == [False, False, True]


def test_first_accepted_takes_the_exit_at_the_threshold() -> None:
    assert first_accepted(ExitCriterion("entropy", 0.2), [0.5, 0.2, 0.1]) == 1
    assert first_accepted(ExitCriterion("confidence", 0.9), [0.5, 0.9, 0.95]) == 1
    assert first_accepted(ExitCriterion("confidence", 0.9), [0.5, 0.8, 0.85]) == 2  # the last exit stops
