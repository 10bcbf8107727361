"""Sentences from fortunes and WordNet: cleaning, counting of skipped lines, top-K restriction."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr_ee.data.errors import MissingPackageError
from asr_ee.data.text_sources import (clean_sentences, load_sentences, read_fortunes,
                                      read_wordnet_examples, restrict_to_top_words)

FORTUNES = """\
The cat sat on the mat today.  The dog did not sit at all!
%
%

%
I have 3 apples and you have none.
%
Email me at someone@example.com right now please.
%
Too short.
%
Don't count your chickens before they hatch.
\t\t-- Proverb
%
the cat sat on the mat today
%
"""
WORDNET = (
    "  1 This software and database is provided \"as is\" by Princeton\n"
    "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which exists; \"the dog sat on the "
    "mat\"; \"a 2nd example with digits here\"\n"
    "00002137 03 n 02 abstraction 0 | a concept; \"too short\"\n")


@pytest.fixture
def text_dirs(tmp_path: Path) -> tuple[Path, Path]:
    fortunes, wordnet = tmp_path / "fortunes", tmp_path / "wordnet"
    (fortunes / "off").mkdir(parents=True)
    (fortunes / "proverbs").write_text(FORTUNES)
    (fortunes / "proverbs.dat").write_bytes(b"\x00\x01binary index")
    (fortunes / "proverbs.u8").symlink_to(fortunes / "proverbs")
    (fortunes / "off" / "rude").write_text("A rude sentence we never want here.\n%\n")
    wordnet.mkdir()
    (wordnet / "data.noun").write_text(WORDNET)
    (wordnet / "index.noun").write_text('"this is not a data file at all"\n')
    return fortunes, wordnet


def test_fortunes_records_sentences_and_skips(text_dirs: tuple[Path, Path]) -> None:
    fortunes, _ = text_dirs
    raw = list(read_fortunes(fortunes))
    assert "A rude sentence we never want here." not in raw  # off/ subdirectory skipped
    assert not any("Proverb" in r for r in raw)  # attribution line dropped
    sentences, candidates, skipped = clean_sentences(raw, min_words=4, max_words=20)
    assert sentences == ["the cat sat on the mat today", "the dog did not sit at all",
                         "don't count your chickens before they hatch"]
    assert candidates == len(raw) == 9
    assert skipped == {"empty": 2, "digits_or_symbols": 2, "too_short": 1, "duplicate": 1}


def test_wordnet_examples(text_dirs: tuple[Path, Path]) -> None:
    _, wordnet = text_dirs
    assert list(read_wordnet_examples(wordnet)) == [
        "the dog sat on the mat", "a 2nd example with digits here", "too short"]


def test_load_sentences_restricts_to_top_words(text_dirs: tuple[Path, Path]) -> None:
    fortunes, wordnet = text_dirs
    corpus = load_sentences(6, fortunes_dir=fortunes, wordnet_dir=wordnet)
    # word counts: the 4, sat 2, on 2, mat 2, dog 2, cat 1, ... -> top 6 cut by frequency then a-z
    assert corpus.vocabulary == ["the", "dog", "mat", "on", "sat", "all"]
    assert corpus.sentences == ["the dog sat on the mat"]
    assert corpus.skipped["outside_top_words"] == 3 and corpus.candidates == 12
    kept, vocab = restrict_to_top_words(["a b", "a c", "a b"], 2)
    assert vocab == ["a", "b"] and kept == ["a b", "a b"]


def test_missing_packages_are_named(tmp_path: Path) -> None:
    with pytest.raises(MissingPackageError, match="'fortunes'"):
        list(read_fortunes(tmp_path / "nope"))
    with pytest.raises(MissingPackageError, match="'wordnet-base'"):
        list(read_wordnet_examples(tmp_path / "nope"))


def test_installed_sources_give_the_documented_sizes() -> None:
    corpus = load_sentences(2000)
    assert 6000 < len(corpus.sentences) < 9000  # DATA.md: ~7,300 inside the top-2,000 words
    assert len(set(corpus.sentences)) == len(corpus.sentences)
    assert all(4 <= len(s.split()) <= 20 for s in corpus.sentences)


def test_lm_sentences_keep_any_length_and_leave_out_evaluation_overlaps(text_dirs: tuple[Path, Path]) -> None:
    from asr_ee.data.text_sources import lm_sentences

    fortunes, wordnet = text_dirs
    exclude = ["the dog sat on the mat", "an evaluation sentence nobody wrote"]
    kept, counts = lm_sentences(exclude, span=4, fortunes_dir=fortunes, wordnet_dir=wordnet)
    assert "too short" in kept                                  # no length floor for LM text
    assert "don't count your chickens before they hatch" in kept
    assert "the dog sat on the mat" not in kept                 # an evaluation sentence
    assert "the dog did not sit at all" in kept
    assert not any("sat on the mat" in s for s in kept)         # shares a 4-word run with one
    assert counts["overlapping_excluded"] == counts["clean"] - len(kept) > 0
    given, _ = lm_sentences(exclude, given=["my own lm text here", "the dog sat on the mat again"])
    assert given == ["my own lm text here"]


def test_the_lm_text_never_holds_an_evaluation_sentence(tiny_corpus: Path) -> None:
    """On the real fortunes + WordNet text: no kept LM sentence contains a dev/test/held-out sentence
    of a prepared corpus, while the corpus's training sentences are still in it."""
    from asr_ee.data.text_sources import lm_sentences

    text = tiny_corpus / "text"
    evals = [s for p in sorted(text.glob("sentences_*.txt")) if p.stem != "sentences_train"
             for s in p.read_text().splitlines() if s]
    train = [s for s in (text / "sentences_train.txt").read_text().splitlines() if s]
    kept, counts = lm_sentences(evals)
    assert counts["overlapping_excluded"] >= len(set(evals))
    joined = "\n".join(kept)
    assert not [s for s in evals if s in joined]
    assert sum(s in set(kept) for s in train) > 0.9 * len(train)
