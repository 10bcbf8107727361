"""The shipped model's ONNX export (exp/small/onnx/, scripts/export_shipped_onnx.sh) is the one the
recognizer runs by default: exported from the shipped model file as it is now, with its exits and
defaults, and chosen when onnxruntime is installed."""

from __future__ import annotations

import json

import pytest

from asr_ee.pretrained import DEFAULT_MODEL
from asr_ee.runtime import backend

SHIPPED = backend.shipped_onnx_dir()
pytestmark = pytest.mark.skipif(not (SHIPPED / "model.json").is_file(), reason="no shipped ONNX export here")


def test_the_shipped_export_is_the_shipped_model_and_the_default() -> None:
    from asr_ee.checkpoint import load_checkpoint

    assert not backend._stale(SHIPPED), "exp/small/onnx is older than exp/small/model.pt: bash scripts/export_shipped_onnx.sh"
    meta = json.loads((SHIPPED / "model.json").read_text())
    checkpoint = load_checkpoint(DEFAULT_MODEL)
    assert meta["exit_layers"] == list(checkpoint["encoder_config"]["exit_layers"]) and meta["int8"] is False
    assert meta["streaming_defaults"] == checkpoint["info"]["defaults"]
    for name in [meta["tokenizer"], meta["streaming_defaults"].get("lm")] + [b["graph"] for b in meta["blocks"]]:
        assert name is None or (SHIPPED / name).is_file()
    assert backend.resolve_backend(None, None) == ("onnx", SHIPPED, None)
