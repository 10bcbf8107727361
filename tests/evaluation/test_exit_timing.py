"""asr_ee.evaluation.exit_timing (scripts/exit_timing.py) finds how many frames an exit's CTC spikes
sit before the last exit's."""

from __future__ import annotations

import torch

from asr_ee.evaluation.exit_timing import lag_matches, main


def _spikes(frames: int, at: list[int]) -> torch.Tensor:
    out = torch.zeros(frames)
    out[at] = 1.0
    return out


def test_an_exit_one_frame_early_has_lag_plus_one() -> None:
    early, last = _spikes(20, [2, 7, 12]), _spikes(20, [3, 8, 13])
    counts = lag_matches([early, last], max_lag=2)  # lags -2..+2
    assert counts[0].tolist() == [0, 0, 0, 3, 0]
    assert counts[1].tolist() == [0, 0, 3, 0, 0]  # the last exit against itself: lag 0
    late = _spikes(20, [5, 10, 15])
    assert int(lag_matches([late, last], max_lag=2)[0].argmax()) - 2 == -2


def test_runs_on_a_model_and_prints_every_exit(overfit_model, capsys) -> None:
    cuts = overfit_model.data_dir / "cuts_dev.jsonl.gz"
    assert main([str(overfit_model.path), str(cuts), "--limit", "2", "--chunk-frames", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("exit layer | best lag")
    assert len(lines) == 2 + 2  # two exits
    assert lines[-1].split("|")[1].strip() == "+0"  # the last exit matches itself at lag 0
