"""scripts/interpolate_models.py (WiSE-FT): weight by weight, a fine-tuned model with more dropout
than its base is accepted (no weight depends on the rate), another architecture is refused."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch

from asr_ee.checkpoint import CheckpointError, export_model, load_checkpoint
from asr_ee.config import to_dict
from asr_ee.data.tokenizer import train_tokenizer
from asr_ee.models import build_encoder, preset

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "interpolate_models.py"


def _export(tmp_path: Path, name: str, tokenizer: Path, seed: int, **overrides) -> Path:
    torch.manual_seed(seed)
    encoder = build_encoder(preset("tiny", vocab_size=32, **overrides))
    path = tmp_path / name
    export_model({"encoder_config": to_dict(encoder.cfg), "model": encoder.state_dict()}, tokenizer, path, half=False)
    return path


def _interpolate(*argv: str) -> None:
    old = sys.argv
    sys.argv = [str(SCRIPT), *argv]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(SCRIPT), run_name="__main__")
        assert done.value.code == 0
    finally:
        sys.argv = old


def test_interpolation_is_weight_by_weight_whatever_the_dropout(tmp_path: Path) -> None:
    tokenizer = train_tokenizer(["a stitch in time saves nine"] * 40, tmp_path / "bpe", vocab_size=32)
    base = _export(tmp_path, "base.pt", tokenizer, seed=0)
    tuned = _export(tmp_path, "tuned.pt", tokenizer, seed=1, dropout=0.3)
    _interpolate(str(tuned), str(base), "0.25", str(tmp_path / "mix.pt"))
    mix, a, b = (load_checkpoint(tmp_path / n) for n in ("mix.pt", "tuned.pt", "base.pt"))
    for name, value in mix["model"].items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.25 * a["model"][name] + 0.75 * b["model"][name])
    assert mix["encoder_config"]["dropout"] == 0.3 and mix["info"]["interpolated"]["alpha"] == 0.25
    other = _export(tmp_path, "other.pt", tokenizer, seed=2, d_model=48)
    old = sys.argv
    sys.argv = [str(SCRIPT), str(other), str(base), "0.5", str(tmp_path / "bad.pt")]
    try:
        with pytest.raises(CheckpointError, match="not the same architecture"):
            runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = old
