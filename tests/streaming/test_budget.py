"""The controller's compute budget: each criterion's ladder of thresholds toward cheaper."""

from __future__ import annotations

import torch

from asr_ee.exits.criteria import ExitCriterion
from asr_ee.exits.gate import FEATURES, ExitGate
from asr_ee.streaming.budget import threshold_ladder


def _gate(calibration: dict[int, list[tuple[float, float, float]]]) -> ExitGate:
    zeros = torch.zeros(3, len(FEATURES))
    return ExitGate([1, 2, 3, 4], 0, zeros, torch.ones(3, len(FEATURES)), zeros, torch.zeros(3), "x",
                    calibration=calibration)


def test_swept_criteria_walk_their_sweep_toward_cheaper() -> None:
    assert threshold_ladder(ExitCriterion("entropy", 0.01), None, 5, 0.05) == [0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.4]
    assert threshold_ladder(ExitCriterion("entropy", 0.04), None, 5, 0.05) == [0.04, 0.05, 0.1, 0.2, 0.4]
    assert threshold_ladder(ExitCriterion("confidence", 0.99), None, 5, 0.05) == [0.99, 0.97, 0.95, 0.9, 0.8, 0.7]
    assert threshold_ladder(ExitCriterion("patience", 3), None, 5, 0.05) == [3, 2, 1]


def test_no_ladder_without_a_scale() -> None:
    assert threshold_ladder(None, None, 5, 0.05) == []
    assert threshold_ladder(ExitCriterion("fixed", 3), None, 5, 0.05) == [3]
    assert threshold_ladder(ExitCriterion("gate", 0.9), _gate({}), 3, 0.05) == [0.9]  # no calibration


def test_the_gate_ladder_follows_its_calibration_one_budget_step_at_a_time() -> None:
    """Rows (threshold, compute, mean layer) for top exit 3: the configured 0.95 costs 0.9; budgets
    0.8, 0.7, 0.6, 0.5 give the highest thresholds within them; 0.4 and below only threshold 0 (every
    chunk at the first exit: the cap's job) reaches, so the ladder ends."""
    rows = [(0.0, 0.3, 1.0), (0.1, 0.45, 1.5), (0.3, 0.5, 2.0), (0.5, 0.58, 2.4), (0.7, 0.7, 2.8), (0.8, 0.8, 3.1),
            (0.95, 0.9, 3.6), (0.99, 1.0, 4.0)]
    gate = _gate({3: rows, 2: rows[:4]})
    assert threshold_ladder(ExitCriterion("gate", 0.95), gate, 3, 0.1) == [0.95, 0.8, 0.7, 0.5, 0.3]
    assert threshold_ladder(ExitCriterion("gate", 0.97), gate, 3, 0.2) == [0.97, 0.7, 0.3]  # 0.97 costs 0.9 too
    assert threshold_ladder(ExitCriterion("gate", 0.5), gate, 2, 0.1) == [0.5, 0.1]  # the ceiling's calibration
