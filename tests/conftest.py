"""Fixtures shared across the suite: the tiny offline corpus and a tiny model that has learned a
few of its utterances by heart (so end-to-end tests can demand exact transcripts)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]

# Tiny models gain nothing from a second thread, and a spinning OpenMP pool collapses when the
# other core is busy: one thread keeps the suite's time predictable on a 2-core machine.
torch.set_num_threads(1)
TINY_YAML = REPO / "recipes" / "offline_tts" / "conf" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output directory of ``asr-ee prepare offline --config recipes/offline_tts/conf/tiny.yaml``."""
    from asr_ee.cli import main

    output_dir = tmp_path_factory.mktemp("tiny") / "corpus"
    assert main(["prepare", "offline", "--config", str(TINY_YAML), "--output-dir", str(output_dir), "--quiet"]) == 0
    return output_dir


@dataclass
class OverfitModel:
    """An exported tiny model and the utterances it transcribes exactly."""

    path: Path
    wavs: list[Path]        # 16 kHz mono wav files of those utterances
    texts: list[str]        # their normalized transcripts
    data_dir: Path          # a corpus dir holding just them (cuts_train/cuts_dev + tokenizer)


def overfit_train_config(data_dir: Path, vocab_size: int, max_steps: int):
    from asr_ee.config import from_dict

    from asr_ee.training import TrainConfig

    return from_dict(TrainConfig, {
        "encoder": {"d_model": 64, "num_layers": 4, "num_heads": 2, "ffn_dim": 128, "conv_kernel": 5,
                    "exit_layers": [2, 4], "vocab_size": vocab_size, "subsampling_channels": 16, "dropout": 0.0},
        "data": {"data_dir": str(data_dir), "noise_cuts": None, "spec_augment": False, "max_duration": 60.0, "num_buckets": 2,
                 "max_cut_duration": 30.0},
        "optim": {"peak_lr": 0.004, "warmup_steps": 30},
        "chunk": {"chunk_frames_choices": [4, 8], "full_context_prob": 0.5, "left_context_chunks_choices": [2, 4]},
        "num_epochs": 100000, "max_steps": max_steps, "checkpoint_every_steps": 100000, "seed": 0,
        "valid_max_batches": 1,
    })


@pytest.fixture(scope="session")
def overfit_config():
    """``overfit_config(data_dir, vocab_size, max_steps)``: the TrainConfig the overfit model uses."""
    return overfit_train_config


@pytest.fixture(scope="session")
def overfit_model(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> OverfitModel:
    from lhotse import CutSet

    from asr_ee.checkpoint import export_model, list_checkpoints, load_checkpoint
    from asr_ee.data.tokenizer import Tokenizer
    from asr_ee.decoding.ctc import greedy_decode
    from asr_ee.features import make_fbank
    from asr_ee.training import train

    root = tmp_path_factory.mktemp("overfit")
    data_dir = root / "data"
    (data_dir / "tokenizer").mkdir(parents=True)
    shutil.copy(tiny_corpus / "tokenizer" / "bpe.model", data_dir / "tokenizer" / "bpe.model")
    cuts = [c for c in CutSet.from_file(tiny_corpus / "cuts_train.jsonl.gz") if "_sp" not in c.id][:4]
    CutSet.from_cuts(cuts).to_file(data_dir / "cuts_train.jsonl.gz")
    CutSet.from_cuts(cuts).to_file(data_dir / "cuts_dev.jsonl.gz")
    tokenizer = Tokenizer(data_dir / "tokenizer" / "bpe.model")
    cfg = overfit_train_config(data_dir, tokenizer.vocab_size, max_steps=250)
    train(cfg, root / "exp")
    state = load_checkpoint(list_checkpoints(root / "exp" / "checkpoints")[-1])
    path = root / "model.pt"
    export_model(state, data_dir / "tokenizer" / "bpe.model", path, half=False)
    wavs, texts = [], []
    for i, cut in enumerate(cuts):
        wav = root / f"utt{i}.wav"
        sf.write(wav, cut.load_audio()[0], cut.sampling_rate)
        wavs.append(wav)
        texts.append(cut.supervisions[0].text)
    _check_memorized(path, wavs, texts)
    return OverfitModel(path, wavs, texts, data_dir)


def _check_memorized(path: Path, wavs: list[Path], texts: list[str]) -> None:
    from asr_ee.audio import load_audio
    from asr_ee.decoding.ctc import greedy_decode
    from asr_ee.features import make_fbank
    from asr_ee.pretrained import load_pretrained

    model = load_pretrained(path)
    for wav, text in zip(wavs, texts):
        feats = torch.from_numpy(make_fbank().extract(load_audio(wav).numpy(), 16000))[None]
        with torch.no_grad():
            outs, _ = model.encoder(feats, torch.tensor([feats.size(1)]))
        hyp = model.tokenizer.decode(greedy_decode(outs[-1][0]))
        assert hyp == text, f"overfit fixture did not memorize {wav.name}: {hyp!r} != {text!r}"


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test (the machine is shared: faster, and timings stay out
    of the tests); the folders whose tests all want it use it through an autouse fixture."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

