"""benchmarks/exit_calibration.py: per-exit temperatures fitted to the last exit, applied to spliced posteriors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch


def _module():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "exit_calibration.py"
    spec = importlib.util.spec_from_file_location("exit_calibration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fitted_temperature_undoes_a_known_sharpening() -> None:
    m = _module()
    logits = torch.randn(400, 16, generator=torch.Generator().manual_seed(0)) * 3
    last = torch.log_softmax(logits, dim=-1)
    assert m.best_temperature(last, last) == 1.0
    assert m.best_temperature(last, torch.log_softmax(logits * 2.0, dim=-1)) == 2.0   # over-confident: T > 1
    assert m.best_temperature(last, torch.log_softmax(logits * 0.5, dim=-1)) == 0.5   # flatter: T < 1


def test_calibrated_splice_rescales_only_the_exits_given_a_temperature() -> None:
    m = _module()
    exits = [torch.log_softmax(torch.randn(6, 5, generator=torch.Generator().manual_seed(k)), -1) for k in range(3)]
    bounds = [(0, 3), (3, 6)]
    same = m.calibrated_splice([1.0, 1.0, 1.0])(exits, (0, 2), bounds)
    assert torch.equal(same, torch.cat([exits[0][:3], exits[2][3:]]))
    hot = m.calibrated_splice([2.0, 1.0, 1.0])(exits, (0, 2), bounds)
    assert torch.allclose(hot[:3], torch.log_softmax(exits[0][:3] / 2.0, -1)) and torch.equal(hot[3:], exits[2][3:])
    assert torch.allclose(hot.exp().sum(-1), torch.ones(6))
