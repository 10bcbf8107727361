"""The learned exit gate on the ONNX backend: ``asr-ee export`` records the torch model's weight
fingerprint in model.json and copies the model's gate into the folder; an ONNX stream with
``--criterion gate`` takes the same exit per chunk as the torch stream; without torch too; and a
gate of another model is refused on both backends (and by the export)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr_ee.api import Recognizer
from asr_ee.config import ConfigError
from asr_ee.evaluation import EvaluationConfig
from asr_ee.exits.fingerprint import model_fingerprint
from asr_ee.exits.gate import ExitGate, gate_path, load_gate
from asr_ee.inputs import Utterance
from asr_ee.runtime.onnx_encoder import load_onnx_model
from no_torch import BLOCK_TORCH
from export_helpers import seeded_encoder, synthetic_speech

CHUNK, LEFT = 4, 2
SETTINGS = {"chunk_frames": CHUNK, "left_context_chunks": LEFT, "controller": None, "endpoint": None,
            "decoding": "greedy", "max_exit_layer": None}


def _fit(encoder, blank_id: int, audio: list) -> tuple[ExitGate, list[float]]:
    """A gate fitted on the model's chunks of ``audio`` (as train-gate fits it), and its values."""
    from asr_ee.commands.train_gate import collect_examples
    from asr_ee.exits.gate_fit import fit_gate

    cfg = EvaluationConfig(chunk_frames=CHUNK, attention="chunk", left_context_chunks=LEFT, criteria=["fixed"])
    utterances = [Utterance(f"u{i}", "-", "-", loader=lambda a=a: a) for i, a in enumerate(audio)]
    features, labels, _, _, failed = collect_examples(encoder, utterances, cfg, blank_id)
    assert failed == 0
    x, y = np.concatenate(features), np.concatenate(labels)
    y[0] = 1 - y[0]  # both classes at every exit, whatever the random model does
    gate = fit_gate(x, y, exit_layers=encoder.cfg.exit_layers, blank_id=blank_id,
                    fingerprint=model_fingerprint(encoder))
    values = [float(v) for k in range(x.shape[1]) for v in gate.probabilities(k, x[:, k])]
    return gate, values


def _threshold_far_from(values: list[float]) -> float:
    """The middle of the widest gap between the gate's values (their middle 60%): no chunk's
    decision hangs on a rounding difference between the backends."""
    values = sorted(values)
    lo, hi = len(values) // 5, 4 * len(values) // 5
    _, i = max((values[i + 1] - values[i], i) for i in range(lo, hi))
    return (values[i] + values[i + 1]) / 2


@pytest.fixture(scope="module")
def gated(tokenizer_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny model file with its gate beside it (model.gate.json), its ``asr-ee export`` and a
    threshold at which the gate stops chunks at different exits."""
    from asr_ee.checkpoint import export_model
    from asr_ee.cli import main
    from asr_ee.config import to_dict
    from asr_ee.data.tokenizer import Tokenizer

    tokenizer = Tokenizer(tokenizer_path)
    encoder = seeded_encoder("tiny", vocab_size=tokenizer.vocab_size)
    folder = tmp_path_factory.mktemp("gated")
    model = folder / "model.pt"
    export_model({"encoder_config": to_dict(encoder.cfg), "model": encoder.state_dict()}, tokenizer_path, model,
                 half=False)
    audio = [synthetic_speech(4.0, seed=s) for s in (40, 41, 42)]
    gate, values = _fit(encoder, tokenizer.blank_id, audio)
    gate.save(gate_path(model))
    onnx = folder / "onnx"
    assert main(["export", "--model", str(model), "--output", str(onnx)]) == 0
    return {"encoder": encoder, "model": model, "onnx": onnx, "gate": gate, "audio": audio,
            "threshold": _threshold_far_from(values)}


def _exits(model, threshold: float, audio) -> list[int]:
    rec = Recognizer.from_pretrained(model, settings=SETTINGS, criterion="gate", threshold=threshold, lm=False)
    return [c.exit_layer for c in rec.transcribe(audio.numpy(), sample_rate=16000).chunks]


def test_export_records_the_fingerprint_and_copies_the_gate(gated: dict) -> None:
    metadata = json.loads((gated["onnx"] / "model.json").read_text())
    assert metadata["model_fingerprint"] == model_fingerprint(gated["encoder"]) == gated["gate"].fingerprint
    assert metadata["gate"] == "model.gate.json"
    copied = load_gate(gated["onnx"] / "model.gate.json", load_onnx_model(gated["onnx"]).encoder)
    np.testing.assert_array_equal(copied.weight, gated["gate"].weight)


def test_onnx_and_torch_streams_take_the_same_exit_per_chunk(gated: dict) -> None:
    onnx = load_onnx_model(gated["onnx"], frontend="lhotse")  # the torch path's features, to compare exits exactly
    for audio in gated["audio"][:2]:
        want = _exits(gated["model"], gated["threshold"], audio)
        got = _exits(onnx, gated["threshold"], audio)
        assert len(set(want)) >= 2, want  # the gate stops chunks at different exits
        assert got == want


# Streams with the gate on the exported folder in a process where torch cannot be imported.
_NO_TORCH = BLOCK_TORCH + r"""
import numpy as np
from asr_ee import Recognizer

settings = json.loads(sys.argv[3])
rec = Recognizer.from_pretrained(sys.argv[1], settings=settings, criterion="gate", threshold=float(sys.argv[4]),
                                 lm=False)
chunks = rec.transcribe(np.load(sys.argv[2]), sample_rate=16000).chunks
print(json.dumps({"exits": [c.exit_layer for c in chunks], "values": [c.criterion_value for c in chunks],
                  "torch": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lhotse"))}))
"""


def test_the_onnx_stream_runs_the_gate_without_torch(gated: dict, tmp_path: Path) -> None:
    audio = gated["audio"][2]
    np.save(tmp_path / "audio.npy", audio.numpy())
    run = subprocess.run([sys.executable, "-c", _NO_TORCH, str(gated["onnx"]), str(tmp_path / "audio.npy"),
                          json.dumps(SETTINGS), repr(gated["threshold"])], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["torch"] == []
    rec = Recognizer.from_pretrained(gated["onnx"], settings=SETTINGS, criterion="gate", threshold=gated["threshold"],
                                     lm=False)
    chunks = rec.transcribe(audio.numpy(), sample_rate=16000).chunks
    assert got["exits"] == [c.exit_layer for c in chunks] and len(set(got["exits"])) >= 2
    assert got["values"] == [c.criterion_value for c in chunks]


def test_a_gate_of_another_model_is_refused_on_both_backends(gated: dict, tmp_path: Path) -> None:
    from asr_ee.cli import main

    other = model_fingerprint(seeded_encoder("tiny", vocab_size=gated["encoder"].cfg.vocab_size, seed=1))
    foreign = dataclasses.replace(gated["gate"], fingerprint=other)
    model, onnx = tmp_path / "model.pt", tmp_path / "onnx"
    shutil.copyfile(gated["model"], model)
    shutil.copytree(gated["onnx"], onnx)
    foreign.save(gate_path(model))
    foreign.save(onnx / "model.gate.json")
    for where in (model, onnx):
        with pytest.raises(ConfigError, match="another model"):
            Recognizer.from_pretrained(where, settings=SETTINGS, criterion="gate", lm=False)
    assert main(["export", "--model", str(model), "--output", str(tmp_path / "refused")]) == 2
    # an export older than the fingerprint in model.json cannot vouch for any gate
    metadata = json.loads((onnx / "model.json").read_text())
    del metadata["model_fingerprint"]
    (onnx / "model.json").write_text(json.dumps(metadata))
    gated["gate"].save(onnx / "model.gate.json")
    with pytest.raises(ConfigError, match="re-export"):
        Recognizer.from_pretrained(onnx, settings=SETTINGS, criterion="gate", lm=False)


def test_onnx_evaluation_of_the_gate_equals_torch(gated: dict, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``asr-ee evaluate --backend onnx --criteria gate`` reads the gate in the exported folder and
    reports what the torch path reports under the chunk mask (same features: lhotse's)."""
    import soundfile as sf

    from asr_ee.cli import main
    from asr_ee.runtime import onnx_encoder

    audio = tmp_path / "audio"
    audio.mkdir()
    for i, samples in enumerate(gated["audio"][:2]):
        sf.write(audio / f"u{i}.wav", samples.numpy(), 16000)
    (tmp_path / "text").write_text("u0 a stitch in time\nu1 saves nine\n")
    monkeypatch.setattr(onnx_encoder, "DEFAULT_FRONTEND", "lhotse")
    rows = []
    for name, model in (("torch", ["--model", str(gated["model"])]),
                        ("onnx", ["--backend", "onnx", "--model", str(gated["onnx"])])):
        assert main(["evaluate", "--audio-dir", str(audio), "--transcripts", str(tmp_path / "text"), "--output-dir",
                     str(tmp_path / name), "--attention", "chunk", "--chunk-frames", str(CHUNK), "--left-context-chunks",
                     str(LEFT), "--criteria", "gate", "--thresholds", f"gate={gated['threshold']!r}", "--no-plot",
                     "--quiet", *model]) == 0
        summary = json.loads((tmp_path / name / "results.json").read_text())
        rows.append([(r["threshold"], r["granularity"], r["wer"], round(r["compute_fraction"], 6))
                     for r in summary["policies"] if r["criterion"] == "gate"])
    assert rows[0] and rows[0] == rows[1]


def test_the_shipped_export_carries_the_shipped_gate() -> None:
    """exp/small/onnx/ (scripts/export_shipped_onnx.sh) holds the gate of exp/small/model.pt and the
    fingerprint it is checked against, so the shipped defaults' criterion runs on either backend."""
    from asr_ee.pretrained import DEFAULT_MODEL
    from asr_ee.runtime.backend import shipped_onnx_dir

    folder = shipped_onnx_dir()
    metadata = json.loads((folder / "model.json").read_text())
    shipped = load_gate(gate_path(DEFAULT_MODEL))
    copied = load_gate(folder / metadata["gate"], load_onnx_model(folder).encoder)
    assert metadata["model_fingerprint"] == shipped.fingerprint == copied.fingerprint
    for name in ("mean", "std", "weight", "bias"):
        np.testing.assert_array_equal(getattr(copied, name), getattr(shipped, name))
    assert copied.calibration == shipped.calibration
