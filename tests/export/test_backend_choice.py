"""Which backend a request runs on (asr_ee.runtime.backend.resolve_backend): an exported folder on
onnxruntime, a model file in torch, the shipped model on its ONNX export when onnxruntime is
installed (else torch, with a note); and the streaming state holding numpy arrays stacks,
unstacks and counts its bytes as it does with tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr_ee.runtime import backend


def test_the_model_decides_the_backend(onnx_dir: Path, model_file: Path) -> None:
    assert backend.resolve_backend(onnx_dir, None) == ("onnx", onnx_dir, None)
    assert backend.resolve_backend(model_file, None) == ("torch", model_file, None)
    assert backend.resolve_backend(model_file, "torch") == ("torch", model_file, None)


def test_the_shipped_model_runs_on_its_onnx_export_when_onnxruntime_is_there(
        onnx_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(backend, "shipped_onnx_dir", lambda: onnx_dir)
    monkeypatch.setattr(backend, "onnx_runtime_available", lambda: True)
    assert backend._stale(onnx_dir)  # exported from the tiny model file, not the shipped one
    chosen, model, note = backend.resolve_backend(None, None)
    assert (chosen, model) == ("torch", None) and "export_shipped_onnx.sh" in note
    monkeypatch.setattr(backend, "_stale", lambda folder: False)
    assert backend.resolve_backend(None, None) == ("onnx", onnx_dir, None)
    assert backend.resolve_backend(None, "torch") == ("torch", None, None)
    monkeypatch.setattr(backend, "onnx_runtime_available", lambda: False)
    chosen, model, note = backend.resolve_backend(None, None)
    assert (chosen, model) == ("torch", None) and "onnxruntime" in note and "torch" in note
    monkeypatch.setattr(backend, "shipped_onnx_dir", lambda: tmp_path / "none")  # no export shipped: torch, quietly
    assert backend.resolve_backend(None, None) == ("torch", None, None)


def test_the_shipped_default_through_the_factory(onnx_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from asr_ee.pretrained import DEFAULT_MODEL
    from asr_ee.streaming.factory import build_recognizer, model_file_defaults

    monkeypatch.setattr(backend, "shipped_onnx_dir", lambda: onnx_dir)
    monkeypatch.setattr(backend, "onnx_runtime_available", lambda: True)
    monkeypatch.setattr(backend, "_stale", lambda folder: False)
    recognizer = build_recognizer(None, lm=False)
    assert recognizer.encoder.frontend == "kaldi-native-fbank" and recognizer.pretrained.path.parent == onnx_dir
    assert recognizer.config.max_exit_layer == 3  # the model's defaults travel in model.json
    assert model_file_defaults(None) == (DEFAULT_MODEL, {"criterion": {"kind": "entropy", "threshold": 0.965},
                                                         "max_exit_layer": 3})


def test_numpy_states_stack_and_unstack(onnx_dir: Path) -> None:
    from asr_ee.runtime.onnx_encoder import OnnxEncoder

    encoder = OnnxEncoder(onnx_dir)
    feats = np.random.default_rng(0).standard_normal((1, 4 * 4 + 3, 80)).astype(np.float32)
    states = [encoder.initial_state(1) for _ in range(2)]
    for state in states:
        encoder.infer(feats, state, left_context_frames=8)
    assert states[0].batch_key() == states[1].batch_key()
    both = type(states[0]).stack(states)
    assert isinstance(both.layers[0].key, np.ndarray) and both.layers[0].key.shape[0] == 2
    assert both.memory_bytes() == sum(s.memory_bytes() for s in states) > 0
    again = both.unstack()
    np.testing.assert_array_equal(again[1].layers[0].key, states[1].layers[0].key)
