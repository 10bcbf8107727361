"""Fixtures for the evaluation tests: a tiny random early-exit model with four exits, a tokenizer,
and a few espeak-ng utterances as a cut manifest, a Kaldi ``text`` file and a TSV.

The model is random (seeded): its hypotheses are wrong but deterministic and differ between
exits, which is what the selection tests need.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr_ee.checkpoint import export_model
from asr_ee.config import to_dict
from asr_ee.data.tokenizer import Tokenizer, train_tokenizer
from asr_ee.models import EarlyExitEncoder, preset

SENTENCES = {
    "utt_fox": "the quick brown fox jumps over the lazy dog",
    "utt_rain": "rain falls softly on the old stone bridge",
    "utt_bird": "a small bird sings in the morning light",
    "utt_ship": "the ship sails across the quiet sea at dawn",
}
EXIT_LAYERS = [1, 2, 3, 4]


@dataclass
class EvalData:
    """Paths of the test inputs; ``texts`` maps utterance id to reference."""

    root: Path
    audio_dir: Path
    texts: dict[str, str]
    wavs: dict[str, Path]
    cuts: Path
    kaldi_text: Path
    tsv: Path


def _espeak(text: str, path: Path) -> None:
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    path.write_bytes(wav)


def _write_cuts(wavs: dict[str, Path], texts: dict[str, str], path: Path) -> None:
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recordings = RecordingSet.from_recordings(Recording.from_file(p, recording_id=i) for i, p in wavs.items())
    supervisions = SupervisionSet.from_segments(
        SupervisionSegment(id=i, recording_id=i, start=0.0, duration=recordings[i].duration, text=texts[i])
        for i in wavs)
    CutSet.from_manifests(recordings=recordings, supervisions=supervisions).to_file(path)


@pytest.fixture(scope="session")
def eval_data(tmp_path_factory: pytest.TempPathFactory) -> EvalData:
    root = tmp_path_factory.mktemp("eval_data")
    audio_dir = root / "audio"
    audio_dir.mkdir()
    wavs = {}
    for utt_id, text in SENTENCES.items():
        wavs[utt_id] = audio_dir / f"{utt_id}.wav"
        _espeak(text, wavs[utt_id])
    cuts = root / "cuts.jsonl.gz"
    _write_cuts(wavs, SENTENCES, cuts)
    kaldi_text = root / "text"
    kaldi_text.write_text("".join(f"{i} {t}\n" for i, t in SENTENCES.items()))
    tsv = root / "transcripts.tsv"
    tsv.write_text("".join(f"{wavs[i].name}\tspeaker\t{t}\n" for i, t in SENTENCES.items()))
    return EvalData(root, audio_dir, dict(SENTENCES), wavs, cuts, kaldi_text, tsv)


@pytest.fixture(scope="session")
def eval_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported random 4-layer model with an exit after every layer."""
    root = tmp_path_factory.mktemp("eval_model")
    sentences = list(SENTENCES.values()) * 3
    tok_path = train_tokenizer(sentences, root / "bpe", vocab_size=32)
    cfg = preset("tiny", exit_layers=EXIT_LAYERS, vocab_size=Tokenizer(tok_path).vocab_size)
    torch.manual_seed(0)
    model = EarlyExitEncoder(cfg).eval()
    path = root / "model.pt"
    export_model({"encoder_config": to_dict(cfg), "model": model.state_dict()}, tok_path, path, half=False)
    return path


@pytest.fixture(scope="session")
def odd_audio(eval_data: EvalData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fox sentence as 44.1 kHz stereo wav, as 16 kHz mono wav and flac; and bad files: corrupt,
    empty (0 bytes), and a valid header with no samples."""
    import torchaudio

    root = tmp_path_factory.mktemp("odd_audio")
    samples, rate = sf.read(eval_data.wavs["utt_fox"], dtype="float32")
    x = torch.from_numpy(samples)
    at_16k = torchaudio.functional.resample(x, rate, 16000).numpy()
    at_44k = torchaudio.functional.resample(x, rate, 44100).numpy()
    paths = {"stereo44k": root / "fox_stereo44k.wav", "mono16k": root / "fox_mono16k.wav",
             "flac": root / "fox_mono16k.flac", "corrupt": root / "corrupt.wav", "empty": root / "empty.wav",
             "no_samples": root / "no_samples.wav"}
    sf.write(paths["stereo44k"], np.stack([at_44k, at_44k], axis=1), 44100, subtype="PCM_16")
    sf.write(paths["mono16k"], at_16k, 16000, subtype="PCM_16")
    sf.write(paths["flac"], at_16k, 16000, subtype="PCM_16", format="FLAC")
    paths["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    paths["empty"].write_bytes(b"")
    sf.write(paths["no_samples"], np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    return paths


@pytest.fixture
def script():
    """Load ``scripts/<name>.py`` as a module: ``script("compare_evals").main([...])``."""
    import importlib.util

    def load(name: str):
        path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
