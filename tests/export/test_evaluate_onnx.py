"""``asr-ee evaluate --backend onnx``: every exit streamed through the exported graphs gives the
report the torch path gives under the chunk mask (same features: the ``lhotse`` front end), per exit
and per policy; its own front end gives a report too; full attention is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from asr_ee.cli import main
from export_helpers import SENTENCES, synthetic_speech


@pytest.fixture
def transcripts(tmp_path: Path) -> tuple[Path, Path]:
    audio = tmp_path / "audio"
    audio.mkdir()
    lines = []
    for i, sentence in enumerate(SENTENCES[:3]):
        sf.write(audio / f"u{i}.wav", synthetic_speech(1.5 + 0.4 * i, seed=i).numpy(), 16000)
        lines.append(f"u{i} {sentence}")
    (tmp_path / "text").write_text("\n".join(lines) + "\n")
    return audio, tmp_path / "text"


def _evaluate(out: Path, transcripts: tuple[Path, Path], *args: str) -> dict:
    audio, text = transcripts
    assert main(["evaluate", "--audio-dir", str(audio), "--transcripts", str(text), "--output-dir", str(out),
                 "--attention", "chunk", "--chunk-frames", "4", "--left-context-chunks", "2",
                 "--criteria", "entropy,fixed", "--no-plot", "--quiet", *args]) == 0
    return json.loads((out / "results.json").read_text())


def _rows(summary: dict) -> tuple[list, list]:
    per_exit = [(r["decoding"], r["exit_layer"], r["wer"]) for r in summary["per_exit"]]
    policies = [(r["criterion"], r["threshold"], r["granularity"], r["wer"], round(r["compute_fraction"], 6))
                for r in summary["policies"]]
    return per_exit, policies


def test_onnx_evaluation_equals_torch_under_the_chunk_mask(onnx_dir: Path, model_file: Path, tmp_path: Path,
                                                            transcripts, monkeypatch: pytest.MonkeyPatch) -> None:
    from asr_ee.runtime import onnx_encoder

    want = _evaluate(tmp_path / "torch", transcripts, "--model", str(model_file))
    own = _evaluate(tmp_path / "onnx", transcripts, "--backend", "onnx", "--model", str(onnx_dir))
    assert own["num_evaluated"] == 3 and len(own["per_exit"]) == len(want["per_exit"]) == 4
    assert all(r["encoder_seconds"] > 0 for r in own["per_exit"])
    monkeypatch.setattr(onnx_encoder, "DEFAULT_FRONTEND", "lhotse")
    got = _evaluate(tmp_path / "onnx-lhotse", transcripts, "--backend", "onnx", "--model", str(onnx_dir))
    assert _rows(got) == _rows(want)
    assert (tmp_path / "onnx-lhotse" / "utterances.jsonl").read_text().count("\n") == 3


def test_onnx_evaluation_needs_the_chunk_mask(onnx_dir: Path, tmp_path: Path, transcripts,
                                              capsys: pytest.CaptureFixture) -> None:
    audio, text = transcripts
    assert main(["evaluate", "--audio-dir", str(audio), "--transcripts", str(text), "--output-dir",
                 str(tmp_path / "out"), "--backend", "onnx", "--model", str(onnx_dir), "--quiet"]) == 2
    assert "--attention chunk" in capsys.readouterr().err
