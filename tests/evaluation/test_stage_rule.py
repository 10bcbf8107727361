"""scripts/stage_rule.py: a training stage's shipping rule over candidate evaluation folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _candidate(folder: Path, wers: dict[str, tuple[float, float]]) -> None:
    for split, (greedy, lm) in wers.items():
        (folder / split).mkdir(parents=True)
        per_exit = [{"decoding": d, "exit_layer": layer, "wer": w + 12 - layer}
                    for d, w in (("greedy", greedy), ("lm", lm)) for layer in (6, 12)]
        (folder / split / "results.json").write_text(json.dumps({"per_exit": per_exit}))


def test_the_rule_picks_the_lowest_unseen_mean_within_the_test_limit(tmp_path: Path, script,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    unseen = "held,natural"
    _candidate(tmp_path / "before", {"test": (14, 7.0), "held": (30, 24.0), "natural": (50, 44.0)})
    _candidate(tmp_path / "better", {"test": (14, 8.0), "held": (30, 22.0), "natural": (50, 40.0),
                                     "hibari": (20, 10.0)})
    _candidate(tmp_path / "best_but_test_worse", {"test": (15, 8.5), "held": (29, 20.0), "natural": (49, 38.0)})
    _candidate(tmp_path / "incomplete", {"test": (14, 6.0), "held": (20, 10.0)})
    args = [str(tmp_path / n) for n in ("before", "better", "best_but_test_worse", "incomplete")]
    assert script("stage_rule").main([*args, "--unseen", unseen, "--extra", "hibari"]) == 0
    out = capsys.readouterr().out
    assert "better | 14.00/8.00 | 30.00/22.00 | 50.00/40.00 | 20.00/10.00 | 31.00 | 40.00" in out
    assert "best_but_test_worse" in out and "test > 8.14" in out and "missing natural" in out
    assert out.strip().splitlines()[-1].startswith("rule: ship better (mean + LM 31.00")
    assert script("stage_rule").main([*args, "--unseen", unseen, "--test-limit", "9"]) == 0
    assert "rule: ship best_but_test_worse" in capsys.readouterr().out
    assert script("stage_rule").main([str(tmp_path / "nowhere")]) == 2
