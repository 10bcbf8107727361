"""Fixtures of the export tests: seeded tiny models (BatchNorm statistics randomized so they
matter), their ONNX exports, a tokenizer and synthetic speech."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnx", reason="onnx is not installed (pip install 'asr_ee[train]')")  # dev includes train
pytest.importorskip("onnxruntime")

from asr_ee.data.tokenizer import train_tokenizer  # noqa: E402
from asr_ee.models import EarlyExitEncoder  # noqa: E402
from export_helpers import SENTENCES, seeded_encoder  # noqa: E402


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


@pytest.fixture(autouse=True)
def single_thread(one_torch_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
