"""``asr-ee export`` on a model file, and the ONNX backend behind the same recognizer: same text,
same exits chunk by chunk as torch (fp32) on the same features (the ONNX model loaded with the
``lhotse`` front end; its own, kaldi-native-fbank, is compared in test_runtime_no_torch.py); int8
within the tolerance the issue sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_ee.cli import main
from asr_ee.pretrained import load_pretrained
from asr_ee.runtime import load_model_for_backend
from asr_ee.runtime.onnx_encoder import load_onnx_model
from asr_ee.streaming.factory import build_recognizer
from export_helpers import synthetic_speech


def test_export_writes_graphs_and_metadata(onnx_dir: Path, model_file: Path) -> None:
    meta = json.loads((onnx_dir / "model.json").read_text())
    assert meta["format"] == "asr_ee.onnx.v1" and meta["exit_layers"] == [1, 2, 3, 4]
    assert [b["graph"] for b in meta["blocks"]] == [f"block{b}.onnx" for b in range(4)]
    assert [b["fill"] for b in meta["blocks"]] == [None, "fill1.onnx", "fill2.onnx", "fill3.onnx"]
    assert all((onnx_dir / name).is_file() for b in meta["blocks"] for name in (b["graph"], b["fill"]) if name)
    assert meta["streaming_defaults"] == {"criterion": {"kind": "entropy", "threshold": 0.965}, "max_exit_layer": 3}
    assert (onnx_dir / meta["tokenizer"]).read_bytes() == load_pretrained(model_file).tokenizer.path.read_bytes()
    assert meta["source"]["path"] == str(model_file) and len(meta["source"]["sha256"]) == 64
    assert meta["int8"] is False and meta["chunk_frames_multiple"] == 1


def _transcribe(recognizer, samples: torch.Tensor):
    stream = recognizer.create_stream()
    for start in range(0, samples.numel(), 2400):  # 150 ms pieces, as a microphone delivers them
        stream.accept_waveform(16000, samples[start:start + 2400])
        while recognizer.is_ready(stream):
            recognizer.decode(stream)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    return recognizer.result(stream)


@pytest.mark.parametrize("skip_policy", ["copy", "recompute"])
def test_onnx_backend_transcribes_as_torch(onnx_dir: Path, model_file: Path, skip_policy: str) -> None:
    """The model's shipped defaults (entropy criterion, exit ceiling 3) travel in model.json."""
    settings = {"chunk_frames": 4, "left_context_chunks": 2, "controller": None, "skip_policy": skip_policy}
    torch_rec = build_recognizer(load_model_for_backend(model_file, "torch"), settings=settings, lm=False)
    onnx_rec = build_recognizer(load_onnx_model(onnx_dir, frontend="lhotse"), settings=settings, lm=False)
    assert onnx_rec.config == torch_rec.config and onnx_rec.config.max_exit_layer == 3
    samples = synthetic_speech(3.0)
    want, got = _transcribe(torch_rec, samples), _transcribe(onnx_rec, samples)
    assert got.tokens == want.tokens and got.text == want.text
    exits = [c.exit_layer for c in want.chunks]
    assert [c.exit_layer for c in got.chunks] == exits and len(set(exits)) > 1  # the criterion varied the exit
    for mine, theirs in zip(got.chunks, want.chunks):
        assert mine.criterion_value == pytest.approx(theirs.criterion_value, abs=1e-4)


def _decode_batched(recognizer, audio: list[torch.Tensor]) -> list:
    streams = [recognizer.create_stream() for _ in audio]
    for stream, samples in zip(streams, audio):
        stream.accept_waveform(16000, samples)
        stream.input_finished()
    while recognizer.decode_streams(streams):
        pass
    return [recognizer.result(s) for s in streams]


def test_batched_onnx_streams_as_torch(onnx_dir: Path, model_file: Path) -> None:
    """Streams decoded together (one batch per chunk, as deep as the deepest member needs)."""
    settings = {"chunk_frames": 4, "controller": None}
    audio = [synthetic_speech(2.0, seed=s) for s in (1, 2, 3)]
    want = _decode_batched(build_recognizer(load_model_for_backend(model_file, "torch"), settings=settings,
                                            lm=False), audio)
    got = _decode_batched(build_recognizer(load_onnx_model(onnx_dir, frontend="lhotse"), settings=settings,
                                           lm=False), audio)
    for mine, theirs in zip(got, want):
        assert mine.tokens == theirs.tokens and mine.text == theirs.text
        assert [c.exit_layer for c in mine.chunks] == [c.exit_layer for c in theirs.chunks]


def test_int8_agrees_with_fp32(model_file: Path, onnx_dir: Path, tmp_path: Path) -> None:
    """Dynamic int8 weights (``--int8``): smaller graphs whose posteriors stay close to fp32's on
    every chunk (the shipped model's WER is measured by benchmarks/onnx_streaming.py)."""
    from asr_ee.features import make_fbank
    from asr_ee.runtime.onnx_encoder import OnnxEncoder

    out = tmp_path / "int8"
    assert main(["export", "--model", str(model_file), "--output", str(out), "--int8"]) == 0
    assert json.loads((out / "model.json").read_text())["int8"] is True
    assert (out / "block1.onnx").stat().st_size < (onnx_dir / "block1.onnx").stat().st_size
    feats = make_fbank().extract(synthetic_speech(4.0, seed=3).numpy(), 16000)[None]
    fp32, int8 = OnnxEncoder(onnx_dir), OnnxEncoder(out)
    states = [fp32.initial_state(1), int8.initial_state(1)]
    want, got = [], []
    for start in range(0, feats.shape[1], 16):
        chunk = feats[:, start:start + 16]
        want.append(fp32.infer(chunk, states[0], left_context_frames=8, skip_policy="copy").log_probs[0])
        got.append(int8.infer(chunk, states[1], left_context_frames=8, skip_policy="copy").log_probs[0])
    want_t, got_t = torch.from_numpy(np.concatenate(want)), torch.from_numpy(np.concatenate(got))
    assert want_t.size(0) == 99
    agreement = (want_t.argmax(-1) == got_t.argmax(-1)).float().mean().item()
    assert agreement >= 0.9, agreement
    assert (want_t.exp() - got_t.exp()).abs().max() < 0.1


def test_onnx_backend_needs_a_folder(tmp_path: Path) -> None:
    from asr_ee.config import ConfigError

    with pytest.raises(ConfigError, match="folder written by `asr-ee export`"):  # (None: the shipped export)
        load_model_for_backend(tmp_path, "onnx")
    with pytest.raises(ConfigError, match="unknown backend"):
        load_model_for_backend(tmp_path, "tensorflow")


def test_both_backends_offer_the_recognizer_surface(onnx_dir: Path, model_file: Path) -> None:
    from asr_ee.runtime import StreamingEncoder
    from asr_ee.runtime.backend import streaming_encoder

    for backend, model in (("torch", model_file), ("onnx", onnx_dir)):
        encoder = streaming_encoder(load_model_for_backend(model, backend).encoder)
        assert isinstance(encoder, StreamingEncoder), backend
        assert encoder.num_exits == 4 and list(encoder.cfg.exit_layers) == [1, 2, 3, 4]


def test_export_copies_the_language_model_the_defaults_name(tokenizer_path: Path, tmp_path: Path) -> None:
    from asr_ee.checkpoint import export_model
    from asr_ee.config import to_dict
    from export_helpers import seeded_encoder

    encoder = seeded_encoder("tiny")
    model = tmp_path / "model.pt"
    export_model({"encoder_config": to_dict(encoder.cfg), "model": encoder.state_dict()}, tokenizer_path, model,
                 half=False, extra={"defaults": {"lm": "lm.pt"}})
    (tmp_path / "lm.pt").write_bytes(b"the model's LM")
    (tmp_path / "lm.arpa.gz").write_bytes(b"its ARPA twin")
    assert main(["export", "--model", str(model), "--output", str(tmp_path / "onnx")]) == 0
    assert (tmp_path / "onnx" / "lm.pt").read_bytes() == b"the model's LM"
    assert (tmp_path / "onnx" / "lm.arpa.gz").read_bytes() == b"its ARPA twin"
    assert json.loads((tmp_path / "onnx" / "model.json").read_text())["streaming_defaults"] == {"lm": "lm.pt"}
