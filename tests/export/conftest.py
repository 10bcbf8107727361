"""Fixtures of the export tests: seeded tiny models (BatchNorm statistics randomized so they
matter), their ONNX exports, a tokenizer and synthetic speech."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx", reason="the onnx extra (pip install 'asr_ee[onnx]') is not installed")  # declared in dev
pytest.importorskip("onnxruntime")

from asr_ee.data.tokenizer import train_tokenizer  # noqa: E402
from asr_ee.models import EarlyExitEncoder, build_encoder, preset  # noqa: E402

SENTENCES = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine",
             "early exits save compute on small devices", "speech recognition runs chunk by chunk"]
ARCHS = ["tiny", "tiny-splitformer"]


def seeded_encoder(arch: str, vocab_size: int = 32, seed: int = 0) -> EarlyExitEncoder:
    """A random tiny model with an exit after every layer (Splitformer branches at exits 1 and 4)
    and random BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    encoder = build_encoder(preset(arch, vocab_size=vocab_size, exit_layers=[1, 2, 3, 4])).eval()
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_(0.0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return encoder


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tokenizer(SENTENCES * 20, tmp_path_factory.mktemp("tok") / "bpe", vocab_size=32)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """``exported(arch, int8=False)``: (torch encoder, export folder), built once per session."""
    from asr_ee.export.onnx import export_onnx

    cache: dict[tuple[str, bool], tuple[EarlyExitEncoder, Path]] = {}

    def get(arch: str, int8: bool = False) -> tuple[EarlyExitEncoder, Path]:
        if (arch, int8) not in cache:
            encoder = seeded_encoder(arch)
            out = tmp_path_factory.mktemp(f"{arch}-{'int8' if int8 else 'fp32'}")
            export_onnx(encoder, out, int8=int8)
            cache[arch, int8] = (encoder, out)
        return cache[arch, int8]

    return get


@pytest.fixture(scope="session")
def model_file(tokenizer_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model file (exits at layers 1-4) with shipped defaults: entropy 0.965, ceiling 3."""
    from asr_ee.checkpoint import export_model
    from asr_ee.config import to_dict
    from asr_ee.data.tokenizer import Tokenizer

    encoder = seeded_encoder("tiny", vocab_size=Tokenizer(tokenizer_path).vocab_size)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    defaults = {"criterion": {"kind": "entropy", "threshold": 0.965}, "max_exit_layer": 3}
    export_model({"encoder_config": to_dict(encoder.cfg), "model": encoder.state_dict()}, tokenizer_path, path,
                 half=False, extra={"defaults": defaults})
    return path


@pytest.fixture(scope="session")
def onnx_dir(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``asr-ee export`` of :func:`model_file` (fp32)."""
    from asr_ee.cli import main

    out = tmp_path_factory.mktemp("onnx") / "exported"
    assert main(["export", "--model", str(model_file), "--output", str(out)]) == 0
    return out


def synthetic_speech(seconds: float, sample_rate: int = 16000, seed: int = 0) -> torch.Tensor:
    """Harmonic bursts with pauses and a little noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sample_rate), dtype=torch.float64) / sample_rate
    phase = 2 * math.pi * torch.cumsum(120 + 80 * torch.sin(2 * math.pi * 0.7 * t), 0) / sample_rate
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 6))
    envelope = (torch.sin(2 * math.pi * 1.3 * t) > -0.3).double()
    return (0.3 * voiced * envelope + 0.05 * torch.randn(t.numel(), generator=g, dtype=torch.float64)).float()


@pytest.fixture(autouse=True)
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
