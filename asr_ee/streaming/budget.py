"""The compute budget the load controller moves: a ladder of exit-criterion thresholds, from the
configured one toward cheaper ones.

Under load the controller (:mod:`asr_ee.streaming.controller`) first walks this ladder, so chunks
the criterion finds easy still stop early and hard ones may still go deep, and only then caps the
depth. The ladder is the criterion's own scale of compute:

* the learned gate (``gate``): thresholds read off its calibration on dev (the mean compute each
  threshold costs, :attr:`asr_ee.exits.gate.ExitGate.calibration`), one every ``step`` of
  full-depth compute below the configured threshold's, through
  :meth:`~asr_ee.exits.gate.ExitGate.threshold_for_budget`; a threshold of 0 (every chunk at the
  first exit) is left to the cap;
* entropy, confidence and patience: the values of the criterion's sweep
  (:data:`asr_ee.exits.criteria.CRITERIA`) that are cheaper than the configured threshold, in order;
* ``fixed``, no criterion, or a gate without calibration: no ladder (the cap alone).
"""

from __future__ import annotations

from asr_ee.config import ConfigError
from asr_ee.exits.criteria import ExitCriterion, ExitModel

__all__ = ["threshold_ladder"]


def threshold_ladder(criterion: ExitCriterion | None, gate: ExitModel | None, top: int, step: float,
                     hold: int = 0) -> list[float]:
    """Thresholds from ``criterion``'s (first) toward cheaper; [] without a criterion.

    Args:
        criterion: the configured exit criterion.
        gate: the learned criterion's model (its calibration is read for ``gate``).
        top: the deepest exit index a chunk may reach (the gate's calibration is per top exit).
        step: share of full-depth compute between two rungs of the gate's ladder.
        hold: the stream's ``hold_chunks``; the gate's calibration must assume the same.
    """
    if criterion is None:
        return []
    spec = criterion.spec
    if spec.needs_model:
        if hasattr(gate, "check_hold"):
            gate.check_hold(hold)
        return [criterion.threshold] + _gate_rungs(gate, criterion.threshold, top, step)
    cheaper = [t for t in spec.sweep if (t > criterion.threshold if spec.accepts == "below" else t < criterion.threshold)]
    return [criterion.threshold] + sorted(cheaper, reverse=spec.accepts == "above")


def _gate_rungs(gate: ExitModel | None, threshold: float, top: int, step: float) -> list[float]:
    rows = getattr(gate, "calibration", {}).get(top)
    if not rows:
        return []
    # the configured threshold's compute: that of the highest calibrated threshold at or below it
    at_or_below = [(t, compute) for t, compute, _ in rows if t <= threshold]
    start = max(at_or_below)[1] if at_or_below else max(compute for _, compute, _ in rows)
    rungs: list[float] = []
    for k in range(1, int(start / step) + 1):
        try:
            rung = gate.threshold_for_budget(round(start - k * step, 9), top)
        except ConfigError:  # below the cheapest the gate reaches
            break
        if rung <= 0.0:
            break
        if rung < (rungs[-1] if rungs else threshold):
            rungs.append(rung)
    return rungs
