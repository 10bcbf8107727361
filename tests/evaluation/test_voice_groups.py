"""scripts/voice_groups.py: the per-voice-group summary reads the shipped gate's evaluations and counts the
alsa clips' wrong words apart from insertions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _results(folder: Path, last: float, policies: list[dict]) -> None:
    folder.mkdir(parents=True)
    per_exit = [{"decoding": d, "exit_layer": layer, "wer": last + 12 - layer} for d in ("greedy", "lm")
                for layer in (6, 12)]
    (folder / "results.json").write_text(json.dumps({"per_exit": per_exit, "policies": policies,
                                                     "num_evaluated": 350}))


def _policy(criterion: str, threshold: float, wer: float, layer: float, hold: int = 0) -> dict:
    return {"criterion": criterion, "threshold": threshold, "granularity": "chunk", "decoding": "lm",
            "hold_chunks": hold, "wer": wer, "avg_exit_layer": layer, "compute_fraction": layer / 12}


def test_the_gate_column_and_the_alsa_count(tmp_path: Path, script, capsys: pytest.CaptureFixture[str]) -> None:
    eval_dir = tmp_path / "model" / "eval"
    _results(eval_dir / "test", 7.0, [])
    _results(eval_dir / "test_chunk8", 9.0, [_policy("entropy", 0.01, 9.5, 10.4)])
    assert script("voice_groups").main([str(tmp_path / "model")]) == 0
    assert "entropy 0.01 per chunk" in capsys.readouterr().out and "| 9.5 / 10.4 / 0.87 |" in (
        script("voice_groups").wer_table(tmp_path / "model"))
    _results(eval_dir / "gate_default" / "test", 9.0,
             [_policy("gate", 0.9, 9.8, 8.3), _policy("gate", 0.9, 9.6, 9.1, hold=1)])
    (eval_dir / "alsa.tsv").write_text("Front_Left\tgrand left\nSide_Left\tso i let it\n")
    assert script("voice_groups").main([str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    assert "shipped gate per chunk" in out and "| 9.8 / 8.3 / 0.69 |" in out  # the gate without a hold
    assert "| **all 2** | | **5: 3 of 4 words wrong, 2 inserted** |" in out
