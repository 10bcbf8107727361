"""The Python API (``from asr_ee import Recognizer``): the factory the command line uses, the
model's own defaults from its file, whole inputs (files, numpy arrays, tensors) with words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import asr_ee
from asr_ee.audio import AudioError, load_audio
from asr_ee.checkpoint import export_model
from asr_ee.cli import main
from asr_ee.config import ConfigError, to_dict
from asr_ee.exits.criteria import ExitCriterion
from streaming_helpers import make_pretrained, synthetic_speech

DEFAULTS = {"max_exit_layer": 3, "criterion": {"kind": "confidence", "threshold": 0.5}, "chunk_frames": 4}


@pytest.fixture
def model_path(tokenizer_path: Path, tmp_path: Path) -> Path:
    """A tiny exported model (exits at layers 1-4) whose file carries shipped defaults."""
    pretrained = make_pretrained(tokenizer_path)
    path = tmp_path / "tiny.pt"
    export_model({"encoder_config": to_dict(pretrained.encoder.cfg), "model": pretrained.encoder.state_dict()},
                 tokenizer_path, path, half=False, extra={"defaults": DEFAULTS})
    return path


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    sf.write(path, synthetic_speech(3.0, seed=3).numpy(), 16000)
    return path


def test_from_pretrained_takes_the_models_defaults_and_the_callers_overrides(model_path) -> None:
    rec = asr_ee.Recognizer.from_pretrained(model_path)
    assert isinstance(rec, asr_ee.api.Recognizer)
    assert rec.config.max_exit_layer == 3 and rec.config.chunk_frames == 4 and rec.top == 2
    assert rec.config.criterion == ExitCriterion("confidence", 0.5)
    rec = asr_ee.Recognizer.from_pretrained(model_path, criterion="fixed", threshold=2,
                                            settings={"max_exit_layer": None})
    assert rec.config.criterion == ExitCriterion("fixed", 1.0)  # layer 2 is the second exit
    assert rec.config.max_exit_layer is None and rec.top == 3
    with pytest.raises(ConfigError, match="not an exit layer"):
        asr_ee.Recognizer.from_pretrained(model_path, criterion="fixed", threshold=7)


def test_the_api_and_the_command_line_give_the_same_words(model_path, wav, capsys) -> None:
    import json

    transcript = asr_ee.Recognizer.from_pretrained(model_path, settings={"controller": None}).transcribe(wav)
    assert main(["transcribe", str(wav), "--model", str(model_path), "--format", "json", "--no-controller"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["text"] == transcript.text
    assert record["words"] == transcript.to_dict()["words"]
    assert [c["exit_layer"] for c in record["chunks"]] == [c.exit_layer for c in transcript.chunks]
    assert max(c.exit_layer for c in transcript.chunks) <= 3  # the ceiling from the model's file


def test_transcribe_takes_a_file_an_array_or_a_tensor_at_any_rate(model_path, wav) -> None:
    # no load controller: its caps follow this machine's clock and load, and every form of the same
    # audio must give the same text
    rec = asr_ee.Recognizer.from_pretrained(model_path, settings={"controller": None})
    from_file = rec.transcribe(wav)
    samples = load_audio(wav)
    assert rec.transcribe(samples.numpy(), sample_rate=16000).text == from_file.text
    assert rec.transcribe(samples, sample_rate=16000).text == from_file.text
    stereo = np.stack([samples.numpy(), samples.numpy()], axis=1)
    assert rec.transcribe(stereo, sample_rate=16000).text == from_file.text
    import torchaudio

    at_8k = rec.transcribe(torchaudio.functional.resample(samples, 16000, 8000), sample_rate=8000)
    assert at_8k.duration_s == pytest.approx(3.0, abs=1e-3)
    assert from_file.duration_s == pytest.approx(3.0, abs=1e-3)
    words = from_file.words
    assert from_file.text and " ".join(w.text for w in words) == from_file.text
    assert all(0.0 <= w.start_s <= w.end_s <= 3.0 and 0.0 < w.confidence <= 1.0 for w in words)
    assert [w.start_s for w in words] == sorted(w.start_s for w in words)


def test_a_whole_file_is_not_a_live_backlog(model_path, tmp_path) -> None:
    """Fed as offline audio, piece by piece as the recognizer asks: the controller never sees a
    backlog beyond a piece, a chunk and the frames the subsampling holds back (not the 12 s a
    live stream would have were the file its backlog), so it has no reason to cut the exits."""
    path = tmp_path / "long.wav"
    sf.write(path, synthetic_speech(12.0, seed=4).numpy(), 16000)
    rec = asr_ee.Recognizer.from_pretrained(model_path, settings={"criterion": None}, cpu_load=lambda: 0.0)
    transcript = rec.transcribe(path)
    assert max(c.backlog_ms for c in transcript.chunks) <= 100 + 160 + 60 + 1e-6
    assert min(c.cap for c in transcript.chunks) == 3


def test_bad_samples_are_clear_errors(model_path) -> None:
    rec = asr_ee.Recognizer.from_pretrained(model_path)
    with pytest.raises(ValueError, match="needs sample_rate"):
        rec.transcribe(np.zeros(16000, np.float32))
    with pytest.raises(AudioError, match="floating-point"):
        rec.transcribe(np.zeros(16000, np.int16), sample_rate=16000)
    with pytest.raises(ValueError, match="a file says its own rate"):
        rec.transcribe("x.wav", sample_rate=16000)
    with pytest.raises(AudioError, match="no such file"):
        rec.transcribe(Path("/nonexistent.wav"))
    assert rec.transcribe(torch.zeros(0), sample_rate=16000).text == ""


def test_a_file_is_read_block_by_block_with_the_same_result(model_path: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """transcribe(path) reads the file in blocks (asr_ee.audio.AudioFile), never whole, and gets what
    the same samples fed at once get; at 44.1 kHz too (the stream resamples)."""
    import asr_ee.api as api

    rec = asr_ee.Recognizer.from_pretrained(model_path, settings={"controller": None})
    speech = synthetic_speech(6.0, seed=5).numpy()
    for rate in (16000, 44100):
        path = tmp_path / f"long_{rate}.wav"
        samples = speech if rate == 16000 else torch.from_numpy(speech)[None].numpy()[0]
        if rate != 16000:
            import torchaudio

            samples = torchaudio.functional.resample(torch.from_numpy(speech), 16000, rate).numpy()
        sf.write(path, samples, rate)
        from_samples = rec.transcribe(load_audio(path).numpy(), sample_rate=16000)
        monkeypatch.setattr(api, "read_audio", lambda *a, **k: pytest.fail("the whole file was loaded"))
        from_file = rec.transcribe(path)
        monkeypatch.undo()
        assert from_samples.text and from_file.text == from_samples.text
        assert from_file.duration_s == pytest.approx(len(samples) / rate)
        assert [w.text for w in from_file.words] == [w.text for w in from_samples.words]
