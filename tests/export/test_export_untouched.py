"""Export leaves the torch model as it was: mode, weights and BatchNorm statistics, also when the
export fails half way."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import asr_ee.export.onnx as onnx_export
from export_helpers import seeded_encoder


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


@pytest.mark.parametrize("arch", ["tiny", "tiny-splitformer"])
def test_export_keeps_training_mode_and_statistics(tmp_path: Path, arch: str) -> None:
    model = seeded_encoder(arch).train()
    before = _snapshot(model)
    onnx_export.export_onnx(model, tmp_path)
    assert model.training and all(m.training for m in model.modules())
    _assert_same(model, before)
    # and the model still trains: a forward pass in training mode updates BatchNorm as before
    model(torch.randn(1, 40, 80), torch.tensor([40]))
    assert any(not torch.equal(model.state_dict()[k], before[k]) for k in before if "running_mean" in k)


def test_failed_export_leaves_model_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = seeded_encoder("tiny").train()
    before = _snapshot(model)
    real = onnx_export._export_graph
    calls = []

    def fail_on_second(encoder, b, fill, path):
        calls.append(b)
        if len(calls) == 2:
            raise RuntimeError("exporter failed")
        real(encoder, b, fill, path)

    onnx_export.export_onnx(model, tmp_path)  # an earlier export in the same folder
    monkeypatch.setattr(onnx_export, "_export_graph", fail_on_second)
    with pytest.raises(RuntimeError, match="exporter failed"):
        onnx_export.export_onnx(model, tmp_path)
    assert model.training
    _assert_same(model, before)
    assert not (tmp_path / onnx_export.METADATA_FILE).exists()  # a half export is no export


def test_non_causal_model_is_refused(tmp_path: Path) -> None:
    from asr_ee.models import build_encoder, preset

    with pytest.raises(ValueError, match="causal"):
        onnx_export.export_onnx(build_encoder(preset("tiny", causal=False)), tmp_path)
