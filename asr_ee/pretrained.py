"""The shipped default model and how to load any model for inference."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asr_ee.config import CheckpointError
from asr_ee.data.tokenizer import Tokenizer

if TYPE_CHECKING:
    from asr_ee.decoding.lm import NgramLM

__all__ = ["DEFAULT_MODEL", "DEFAULT_LM", "SHIPPED_DIR", "Pretrained", "load_pretrained", "resolve_lm"]


def _shipped_dir() -> Path:
    """Where the shipped model and LM are: ``asr_ee/shipped/`` in an installed wheel (the build
    copies ``exp/small/{model.pt,lm.pt}`` there, see setup.py), else ``exp/small/`` of the clone."""
    packaged = Path(__file__).resolve().parent / "shipped"
    return packaged if (packaged / "model.pt").is_file() else Path(__file__).resolve().parent.parent / "exp" / "small"


SHIPPED_DIR = _shipped_dir()
DEFAULT_MODEL = SHIPPED_DIR / "model.pt"
DEFAULT_LM = DEFAULT_MODEL.with_name("lm.pt")  # the token LM built for the shipped model's tokenizer
# The shipped model's default settings (exit ceiling, criterion, LM) travel in its file's metadata:
# see asr_ee.streaming.factory.model_defaults.


@dataclass
class Pretrained:
    """A model ready for inference: its encoder (a torch ``EarlyExitEncoder``, or an
    ``OnnxEncoder`` for an exported folder), tokenizer, file and stored information."""

    encoder: Any
    tokenizer: Tokenizer
    path: Path
    info: dict


def load_pretrained(path: str | Path | None = None, tokenizer: str | Path | None = None) -> Pretrained:
    """Load an exported model (tokenizer inside) or a training checkpoint (then the tokenizer comes
    from ``tokenizer`` or from the checkpoint's training config)."""
    from asr_ee.checkpoint import load_model

    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.is_file():
        raise CheckpointError(f"model {path} does not exist" + (
            " (the default model ships in exp/small/ of the repository, and in asr_ee/shipped/ of a wheel)"
            if path == DEFAULT_MODEL else ""))
    encoder, tok_bytes, info = load_model(path)
    if tokenizer is None and tok_bytes is not None:
        tokenizer = _tokenizer_file(tok_bytes)
    if tokenizer is None:
        from asr_ee.checkpoint import load_checkpoint

        data = load_checkpoint(path).get("train_config", {}).get("data", {})
        if not data:
            raise CheckpointError(f"{path} carries no tokenizer; pass one explicitly")
        tokenizer = Path(data["data_dir"]) / data["tokenizer"]
    tok = Tokenizer(tokenizer)
    if tok.vocab_size != encoder.cfg.vocab_size:
        raise CheckpointError(f"tokenizer {tokenizer} has {tok.vocab_size} tokens, model expects "
                              f"{encoder.cfg.vocab_size}")
    return Pretrained(encoder, tok, path, info)


def _tokenizer_file(data: bytes) -> Path:
    """A file holding a model's tokenizer: one per distinct tokenizer (named by its hash) in the
    temporary directory, written once (atomically) and reused by every later load."""
    folder = Path(tempfile.gettempdir()) / "asr_ee-tokenizers"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.model"
    if not path.is_file() or path.stat().st_size != len(data):
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
            f.write(data)
        os.replace(f.name, path)
    return path


def resolve_lm(path: str | Path | None, pretrained: Pretrained, *, required: bool = False) -> "NgramLM | None":
    """The LM to fuse: ``path`` if given, else the shipped one when the model is the shipped model
    (another model's tokenizer would not match it), else None, or with ``required`` a ConfigError.
    Checked against the model's tokenizer."""
    from asr_ee.config import ConfigError
    from asr_ee.decoding.kenlm import load_lm

    if path is None:
        if pretrained.path.resolve() != DEFAULT_MODEL or not DEFAULT_LM.is_file():
            if required:
                raise ConfigError(f"model {pretrained.path} needs --lm PATH: the shipped LM goes with the shipped "
                                  "model only (build one with `asr-ee lm`)")
            return None
        path = DEFAULT_LM
    lm = load_lm(path)
    lm.check_tokenizer(pretrained.tokenizer)
    return lm
