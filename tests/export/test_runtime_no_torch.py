"""The runtime without torch: fbank from kaldi-native-fbank equals lhotse's, and the exported
graphs driven from numpy (features, chunks, every block, greedy CTC) transcribe exactly as the
torch recognizer does, in a process that never imports torch."""

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
