"""asr_ee.exits.selection pieces the oracle-bound script relies on: the oracle's minimum exit and the
splicing of chosen exits' posteriors."""

from __future__ import annotations

import torch

from asr_ee.exits.selection import oracle_exit, segment_bounds, splice_posteriors


def test_oracle_exit_starts_at_min_exit_and_falls_back_to_the_last() -> None:
    outputs = [[1, 2], [1, 3], [1, 2], [1, 2]]
    assert oracle_exit(outputs) == 0                 # exit 0 already agrees with the last
    assert oracle_exit(outputs, min_exit=1) == 2     # exit 1 disagrees, exit 2 agrees
    assert oracle_exit([[1], [2], [3]], min_exit=0) == 2
    assert oracle_exit(outputs, min_exit=9) == 3     # past the last exit: the last


def test_splice_takes_each_segment_from_its_exit() -> None:
    exit_lps = [torch.full((10, 3), float(k)) for k in range(3)]  # exit k's posteriors are all k
    bounds = segment_bounds(10, 4)                                 # (0, 4), (4, 8), (8, 10)
    spliced = splice_posteriors(exit_lps, [2, 0, 1], bounds)
    assert spliced.shape == (10, 3)
    assert spliced[:, 0].tolist() == [2.0] * 4 + [0.0] * 4 + [1.0] * 2
