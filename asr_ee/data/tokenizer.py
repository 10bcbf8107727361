"""SentencePiece tokenizer whose id 0 is the CTC blank.

The model is trained with ``pad_id=0`` (piece ``<blk>``), ``unk_id=1`` and no BOS/EOS, so
``encode`` returns ids in ``[1, vocab_size)`` and id 0 is free for the CTC blank.
"""

from __future__ import annotations

import hashlib

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Literal

import sentencepiece as spm

__all__ = ["BLANK_ID", "BLANK_PIECE", "UNK_ID", "Tokenizer", "train_tokenizer", "check_lm_tokenizer"]

log = logging.getLogger(__name__)

BLANK_ID = 0
BLANK_PIECE = "<blk>"
UNK_ID = 1
_TOO_HIGH = re.compile(r"Vocabulary size is too high \((\d+)\).*?<= (\d+)", re.S)
_TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


def _train_once(texts_file: Path, prefix: Path, vocab_size: int, model_type: str) -> None:
    spm.SentencePieceTrainer.train(
        input=str(texts_file), model_prefix=str(prefix), vocab_size=vocab_size,
        model_type=model_type, character_coverage=1.0, pad_id=BLANK_ID, pad_piece=BLANK_PIECE,
        unk_id=UNK_ID, bos_id=-1, eos_id=-1, hard_vocab_limit=False,
        num_threads=max(1, min(4, os.cpu_count() or 1)), minloglevel=2,
        input_sentence_size=2_000_000, shuffle_input_sentence=True,
    )


def train_tokenizer(texts: Iterable[str], model_prefix: str | Path, vocab_size: int,
                    model_type: Literal["bpe", "unigram", "char"] = "bpe") -> Path:
    """Train a SentencePiece model on ``texts``; write ``<model_prefix>.model`` and ``.vocab``.

    When ``vocab_size`` is more than the corpus supports (a tiny corpus), the largest size the
    trainer accepts is used instead and a warning says so. The files appear atomically: an
    interrupted run leaves no ``.model`` behind.

    Returns:
        The path of the ``.model`` file.
    """
    lines = [t.strip() for t in texts if t and t.strip()]
    if not lines:
        raise ValueError("train_tokenizer: no non-empty text to train on")
    model_prefix = Path(model_prefix)
    model_prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_prefix.parent, prefix=".tmp_spm_") as tmp:
        texts_file = Path(tmp) / "texts.txt"
        texts_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp_prefix = Path(tmp) / "model"
        try:
            _train_once(texts_file, tmp_prefix, vocab_size, model_type)
        except RuntimeError as e:
            too_low = _TOO_LOW.search(str(e))
            if too_low is not None:
                raise ValueError(f"vocab_size {vocab_size} is smaller than the {too_low.group(2)} "
                                 "characters and special pieces of this text") from e
            match = _TOO_HIGH.search(str(e))
            if match is None:
                raise
            reduced = int(match.group(2))
            log.warning("tokenizer: vocab_size %d is too large for this text; using %d",
                        vocab_size, reduced)
            _train_once(texts_file, tmp_prefix, reduced, model_type)
        actual = spm.SentencePieceProcessor(model_file=str(tmp_prefix) + ".model").get_piece_size()
        if actual < vocab_size:
            log.warning("tokenizer: the text supports only %d of the %d requested units",
                        actual, vocab_size)
        for ext in (".vocab", ".model"):  # .model last: its presence means "finished"
            shutil.move(str(tmp_prefix) + ext, str(model_prefix) + ext)
    return Path(str(model_prefix) + ".model")


class Tokenizer:
    """Text <-> token ids with a SentencePiece model trained by :func:`train_tokenizer`.

    Args:
        path: the ``.model`` file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"tokenizer model {self.path} does not exist")
        self._sp = spm.SentencePieceProcessor(model_file=str(self.path))
        if self._sp.pad_id() != BLANK_ID or self._sp.id_to_piece(BLANK_ID) != BLANK_PIECE:
            raise ValueError(f"{self.path}: id {BLANK_ID} is not the blank {BLANK_PIECE!r}; "
                             "train it with asr_ee.data.tokenizer.train_tokenizer")

    @property
    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) of what decides the token ids: the pieces with their scores
        and types, and the normalizer. Ties a token LM to this tokenizer. Not of the file's bytes:
        those also hold the trainer's temporary input path, so a rebuilt corpus with the very same
        tokenizer would otherwise reject every LM built for it."""
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(self.path.read_bytes())
        digest = hashlib.sha256()
        for piece in proto.pieces:
            digest.update(f"{piece.piece}\t{piece.score!r}\t{piece.type}\n".encode())
        digest.update(proto.normalizer_spec.SerializeToString(deterministic=True))
        return digest.hexdigest()[:16]

    @property
    def vocab_size(self) -> int:
        """Number of output units, blank included."""
        return self._sp.get_piece_size()

    @property
    def blank_id(self) -> int:
        return BLANK_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (already normalized); never contains the blank id."""
        return list(self._sp.encode(text, out_type=int))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [list(ids) for ids in self._sp.encode(texts, out_type=int)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of token ids; blanks are dropped."""
        return self._sp.decode([int(i) for i in ids if int(i) != BLANK_ID])

    def id_to_piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(int(token_id))

    def __repr__(self) -> str:
        return f"Tokenizer(path={str(self.path)!r}, vocab_size={self.vocab_size})"


def check_lm_tokenizer(vocab_size: int, built_with: str | None, tokenizer: Any) -> None:
    """Raise ConfigError unless a token LM of ``vocab_size`` tokens built for the tokenizer whose
    fingerprint is ``built_with`` fits ``tokenizer`` (anything with ``vocab_size`` and
    ``fingerprint``): the one check every LM format shares."""
    from asr_ee.config import ConfigError

    if vocab_size != tokenizer.vocab_size or (built_with and built_with != tokenizer.fingerprint):
        raise ConfigError(f"the language model was built for another tokenizer (fingerprint {built_with}, "
                          f"{vocab_size} tokens) than the model's ({tokenizer.fingerprint}, "
                          f"{tokenizer.vocab_size} tokens); rebuild it with `asr-ee lm` and this tokenizer")

