"""SentencePiece tokenizer: blank at id 0, no BOS/EOS, round trips, tiny corpora."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sentencepiece as spm

from asr_ee.data.tokenizer import Tokenizer, train_tokenizer

TEXTS = ["the cat sat on the mat", "a dog barked at the cat", "don't count your chickens",
         "it's a long way to the top", "the quick brown fox jumps over the lazy dog"] * 4


def test_round_trip_and_blank(tmp_path: Path) -> None:
    tokenizer = Tokenizer(train_tokenizer(TEXTS, tmp_path / "bpe", vocab_size=40))
    assert tokenizer.vocab_size == 40 and tokenizer.blank_id == 0
    assert tokenizer.id_to_piece(0) == "<blk>" and tokenizer.id_to_piece(1) == "<unk>"
    for text in set(TEXTS) | {"the fox sat on a dog"}:
        ids = tokenizer.encode(text)
        assert ids and min(ids) >= 2 and max(ids) < tokenizer.vocab_size  # no blank, no unk
        assert tokenizer.decode(ids) == text
        assert tokenizer.decode([0] + ids[:1] + [0] + ids[1:] + [0]) == text  # blanks dropped
    assert tokenizer.encode_batch(["the cat", "a dog"]) == [tokenizer.encode("the cat"),
                                                            tokenizer.encode("a dog")]


def test_vocab_too_large_for_corpus_is_reduced_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        path = train_tokenizer(["hello world", "hello there"], tmp_path / "bpe", vocab_size=500)
    tokenizer = Tokenizer(path)
    assert tokenizer.vocab_size < 500
    assert "500" in caplog.text
    assert tokenizer.decode(tokenizer.encode("hello there world")) == "hello there world"


def test_rejects_model_without_blank(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("\n".join(TEXTS))
    spm.SentencePieceTrainer.train(input=str(tmp_path / "t.txt"), model_prefix=str(tmp_path / "plain"),
                                   vocab_size=40, minloglevel=2)
    with pytest.raises(ValueError, match="blank"):
        Tokenizer(tmp_path / "plain.model")
    with pytest.raises(ValueError, match="no non-empty text"):
        train_tokenizer(["", "  "], tmp_path / "x", vocab_size=10)


def test_vocab_smaller_than_alphabet_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="smaller than the [0-9]+ characters"):
        train_tokenizer(TEXTS, tmp_path / "bpe", vocab_size=10)


def test_fingerprint_is_the_same_for_the_same_tokenizer_built_twice(tmp_path: Path) -> None:
    """Rebuilding a corpus trains the very same tokenizer in another temporary directory (the
    file's bytes differ by that path): an LM built for one must be accepted by the other."""
    first = train_tokenizer(TEXTS, tmp_path / "a" / "bpe", vocab_size=40)
    second = train_tokenizer(TEXTS, tmp_path / "b" / "bpe", vocab_size=40)
    other = train_tokenizer(TEXTS, tmp_path / "c" / "bpe", vocab_size=36)
    assert first.read_bytes() != second.read_bytes()
    assert Tokenizer(first).fingerprint == Tokenizer(second).fingerprint
    assert Tokenizer(first).fingerprint != Tokenizer(other).fingerprint
