"""The runtime without torch: fbank from kaldi-native-fbank equals lhotse's; the exported graphs
driven from numpy (features, chunks, every block, greedy CTC) transcribe exactly as the torch
recognizer does, in a process that never imports torch; and ``asr-ee transcribe``, ``asr-ee mic``
and ``Recognizer.from_pretrained`` on an exported folder run in a process where importing torch,
torchaudio or lhotse fails, with the same output as in this process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr_ee.features import make_fbank
from asr_ee.runtime.fbank import StreamingFbank, fbank
from asr_ee.runtime import load_model_for_backend
from asr_ee.streaming.factory import build_recognizer
from export_helpers import synthetic_speech

CHUNK = 4


@pytest.mark.parametrize("seconds", [0.05, 0.5013, 2.0])
def test_fbank_equals_lhotse(seconds: float) -> None:
    speech = synthetic_speech(seconds).numpy()
    signal = np.concatenate([speech, np.zeros(4000, np.float32), speech[: len(speech) // 3]])
    want = make_fbank().extract(signal, 16000)
    streaming = StreamingFbank()
    got = np.concatenate([streaming.accept(signal[i:i + 1234]) for i in range(0, len(signal), 1234)]
                         + [streaming.finish()])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=0)
    np.testing.assert_allclose(fbank(signal), got, atol=0, rtol=0)


_NO_TORCH_SCRIPT = r"""
import json, sys
import numpy as np
import sentencepiece as spm
from asr_ee.runtime.fbank import StreamingFbank
from asr_ee.runtime.onnx_graphs import OnnxGraphs

model_dir, wav, chunk, left = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
graphs = OnnxGraphs(model_dir)
signal = np.load(wav)
extractor = StreamingFbank()
feats = np.concatenate([extractor.accept(signal[i:i + 1600]) for i in range(0, len(signal), 1600)]
                       + [extractor.finish()])[None]
caches, start, buffered, tokens, previous = graphs.initial_caches(1), 0, feats[:, :0], [], 0
pos = 0
while pos < feats.shape[1]:
    step = 4 * chunk + (3 if pos == 0 else 0)
    buffered = np.concatenate([buffered, feats[:, pos:pos + step]], axis=1)
    pos += step
    x, frames, buffered = graphs.take_chunk(buffered)
    if frames == 0:
        continue
    for b in range(graphs.num_exits):
        log_probs, x = graphs.run_block(b, x, start, caches, left)
    start += frames
    for token in log_probs[0].argmax(-1).tolist():  # greedy CTC: collapse repeats, drop blanks
        if token != previous and token != 0:
            tokens.append(token)
        previous = token
sp = spm.SentencePieceProcessor(model_file=model_dir + "/" + graphs.metadata["tokenizer"])
print(json.dumps({"tokens": tokens, "text": sp.decode(tokens),
                  "torch_modules": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))}))
"""


def test_onnx_runtime_without_torch_transcribes_as_torch(onnx_dir: Path, model_file: Path, tmp_path: Path) -> None:
    samples = synthetic_speech(3.0, seed=5)
    wav = tmp_path / "signal.npy"
    np.save(wav, samples.numpy())
    run = subprocess.run([sys.executable, "-c", _NO_TORCH_SCRIPT, str(onnx_dir), str(wav), str(CHUNK), str(2 * CHUNK)],
                         capture_output=True, text=True, check=True)
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["torch_modules"] == []
    settings = {"chunk_frames": CHUNK, "left_context_chunks": 2, "controller": None, "endpoint": None,
                "decoding": "greedy", "max_exit_layer": None, "tail_silence_ms": 0.0}
    recognizer = build_recognizer(load_model_for_backend(model_file, "torch"), settings=settings, criterion="none",
                                  lm=False)
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, samples)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    want = recognizer.result(stream)
    assert len(want.tokens) > 5
    assert got["tokens"] == want.tokens and got["text"].strip() == want.text


# Runs the command line in a process where torch, torchaudio and lhotse cannot be imported (as if
# they were not installed).
_BLOCKED = r"""
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchaudio", "lhotse"):
            raise ModuleNotFoundError(f"{name} is blocked: the ONNX runtime must not import it", name=name)
        return None

sys.meta_path.insert(0, NoTorch())
if sys.argv[1] == "api":
    from asr_ee import Recognizer
    rec = Recognizer.from_pretrained(sys.argv[2], lm=False, settings={"controller": None, "chunk_frames": 4})
    print(rec.transcribe(sys.argv[3]).text)
    code = 0
else:
    from asr_ee.cli import main
    code = main(sys.argv[1:])
print("imported:", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchaudio", "lhotse")))
sys.exit(code)
"""


def _run_blocked(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCKED, *args], capture_output=True, text=True, timeout=300)


def _blocked(*args: str) -> list[str]:
    run = _run_blocked(*args)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "imported: []"
    return lines[:-1]


def test_cli_mic_and_api_run_without_torch(onnx_dir: Path, tmp_path: Path) -> None:
    import soundfile as sf

    from asr_ee.api import Recognizer

    wav, wav44 = tmp_path / "speech.wav", tmp_path / "speech44.wav"
    sf.write(wav, synthetic_speech(2.5, seed=7).numpy(), 16000)
    sf.write(wav44, synthetic_speech(2.5, sample_rate=44100, seed=7).numpy(), 44100)
    settings = {"controller": None, "chunk_frames": 4}
    rec = Recognizer.from_pretrained(onnx_dir, lm=False, settings=settings)
    want = {path.stem: rec.transcribe(path).text for path in (wav, wav44)}
    assert all(want.values())
    common = ["--model", str(onnx_dir), "--no-lm", "--no-controller", "--chunk-frames", "4"]
    assert _blocked("transcribe", str(wav), str(wav44), *common) == [f"{k}\t{v}" for k, v in want.items()]
    assert _blocked("api", str(onnx_dir), str(wav)) == [want["speech"]]
    mic = _blocked("mic", "--input-file", str(wav), "--speed", "50", "--plain", *common)
    assert mic[-2] == f"transcript: {want['speech']}"


def test_commands_that_need_torch_say_so_without_it(tmp_path: Path) -> None:
    run = _run_blocked("evaluate", str(tmp_path / "a.wav"), "--output-dir", str(tmp_path / "out"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "runtime install leaves out (pip install 'asr_ee[train]')" in run.stderr


def test_the_runtime_tail_silence_is_quiet_and_fixed() -> None:
    from asr_ee.features import TAIL_NOISE_RMS, tail_silence_samples
    from asr_ee.streaming.frontend import tail_silence

    for frontend in ("lhotse", "kaldi-native-fbank"):
        tail = tail_silence(frontend, 320.0)
        assert tail.dtype == np.float32 and tail.shape == (tail_silence_samples(320.0),)
        assert np.sqrt(np.mean(tail.astype(np.float64) ** 2)) == pytest.approx(TAIL_NOISE_RMS, rel=0.1)
        np.testing.assert_array_equal(tail, tail_silence(frontend, 320.0))
