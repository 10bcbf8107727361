"""``asr-ee transcribe --backend onnx --model DIR``: the command's output equals the torch path's on
the same features (the ``lhotse`` front end), and the API's with its own (kaldi-native-fbank)."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from asr_ee.api import Recognizer
from asr_ee.cli import main
from export_helpers import synthetic_speech


def _transcribe(capsys: pytest.CaptureFixture, *args: str) -> str:
    capsys.readouterr()
    assert main(["transcribe", *args, "--no-lm", "--no-controller", "--chunk-frames", "4"]) == 0
    return capsys.readouterr().out


def test_transcribe_with_onnx_backend_prints_torch_output(onnx_dir: Path, model_file: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from asr_ee.runtime import onnx_encoder

    wav = tmp_path / "speech.wav"
    sf.write(wav, synthetic_speech(2.5, seed=7).numpy(), 16000)
    want = _transcribe(capsys, "--model", str(model_file), str(wav))
    own = _transcribe(capsys, "--backend", "onnx", "--model", str(onnx_dir), str(wav))
    api = Recognizer.from_pretrained(onnx_dir, lm=False, settings={"controller": None, "chunk_frames": 4})
    assert own.strip() and own == f"speech\t{api.transcribe(wav).text}\n"
    assert _transcribe(capsys, "--model", str(onnx_dir), str(wav)) == own  # a folder means the onnx backend
    monkeypatch.setattr(onnx_encoder, "DEFAULT_FRONTEND", "lhotse")
    got = _transcribe(capsys, "--backend", "onnx", "--model", str(onnx_dir), str(wav))
    assert want.strip() and got == want


def test_onnx_backend_without_an_export_folder_is_a_clear_error(model_file: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    wav = tmp_path / "speech.wav"
    sf.write(wav, synthetic_speech(0.5).numpy(), 16000)
    assert main(["transcribe", "--backend", "onnx", "--model", str(model_file), str(wav)]) == 2
    assert "folder written by `asr-ee export`" in capsys.readouterr().err
