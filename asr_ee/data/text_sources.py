"""Sentences for the offline TTS corpus, from Debian's ``fortunes`` and ``wordnet-base``.

Fortunes are split on ``%`` lines and then into sentences; WordNet contributes the quoted usage
examples inside its glosses. A candidate sentence is kept when, before normalization, it holds
only letters, spaces and ordinary punctuation (no digits, no symbols), and when, after
:func:`asr_ee.text.normalize_text`, it has ``min_words``..``max_words`` words. Sentences are
deduplicated, then restricted to those whose words are all among the ``top_k`` most frequent words,
which sizes the task (see /work/shared/DATA.md). Every rejected candidate is counted by reason.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from asr_ee.data.errors import MissingPackageError
from asr_ee.text import normalize_text

__all__ = ["FORTUNES_DIR", "WORDNET_DIR", "SentenceCorpus", "read_fortunes",
           "read_wordnet_examples", "clean_sentences", "restrict_to_top_words", "load_sentences", "lm_sentences"]

FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
SOURCES = ("fortunes", "wordnet")

_ALLOWED = re.compile(r"^[A-Za-z\s.,;:!?'\"\-]+$")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"']?\s+")
_ATTRIBUTION = re.compile(r"^\s*(--|-)\s*\S")
_QUOTED = re.compile(r'"([^"]+)"')


@dataclasses.dataclass
class SentenceCorpus:
    """Normalized sentences plus what happened on the way (for ``corpus.json``)."""

    sentences: list[str]
    candidates: int
    skipped: dict[str, int]
    vocabulary: list[str]

    def summary(self) -> dict[str, object]:
        return {"candidates": self.candidates, "kept": len(self.sentences),
                "skipped": dict(self.skipped), "vocabulary_size": len(self.vocabulary)}


def _fortune_files(root: Path) -> list[Path]:
    """Fortune databases: plain files at the top level (``*.dat`` indexes, ``*.u8`` links and
    subdirectories such as the offensive ``off/`` set are skipped)."""
    return sorted(p for p in root.iterdir()
                  if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8"))


def _split_sentences(record: str) -> Iterator[str]:
    lines = [ln for ln in record.splitlines() if not _ATTRIBUTION.match(ln)]
    text = " ".join(ln.strip() for ln in lines)
    for sentence in _SENTENCE_END.split(text):
        yield sentence.strip()


def read_fortunes(root: Path = FORTUNES_DIR) -> Iterator[str]:
    """Candidate sentences of every fortune database under ``root`` (not yet cleaned)."""
    if not root.is_dir() or not _fortune_files(root):
        raise MissingPackageError(f"fortune databases in {root}", "fortunes")
    for path in _fortune_files(root):
        record: list[str] = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip() == "%":
                yield from _split_sentences("\n".join(record))
                record = []
            else:
                record.append(line)
        if record:
            yield from _split_sentences("\n".join(record))


def read_wordnet_examples(root: Path = WORDNET_DIR) -> Iterator[str]:
    """Quoted usage examples from the glosses of ``root/data.*`` (not yet cleaned)."""
    files = sorted(root.glob("data.*")) if root.is_dir() else []
    if not files:
        raise MissingPackageError(f"WordNet data files in {root}", "wordnet-base")
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" ") or " | " not in line:  # licence header, malformed
                continue
            gloss = line.split(" | ", 1)[1]
            yield from (m.group(1).strip() for m in _QUOTED.finditer(gloss))


def clean_sentences(raw: Iterable[str], *, min_words: int = 4,
                    max_words: int = 20) -> tuple[list[str], int, dict[str, int]]:
    """Normalize, filter and deduplicate candidate sentences (first occurrence order).

    Returns:
        ``(sentences, number_of_candidates, skipped_by_reason)``; reasons are ``empty``,
        ``digits_or_symbols``, ``too_short``, ``too_long`` and ``duplicate``.
    """
    skipped: collections.Counter[str] = collections.Counter()
    seen: set[str] = set()
    kept: list[str] = []
    candidates = 0
    for text in raw:
        candidates += 1
        if not text or not text.strip():
            skipped["empty"] += 1
            continue
        if not _ALLOWED.match(text):
            skipped["digits_or_symbols"] += 1
            continue
        sentence = normalize_text(text)
        num_words = len(sentence.split())
        if num_words < min_words:
            skipped["too_short"] += 1
        elif num_words > max_words:
            skipped["too_long"] += 1
        elif sentence in seen:
            skipped["duplicate"] += 1
        else:
            seen.add(sentence)
            kept.append(sentence)
    return kept, candidates, dict(skipped)


def restrict_to_top_words(sentences: Sequence[str], top_k: int) -> tuple[list[str], list[str]]:
    """Keep the sentences whose words are all among the ``top_k`` most frequent words.

    Frequency ties are broken alphabetically so the result is deterministic.

    Returns:
        ``(kept_sentences, vocabulary)`` where ``vocabulary`` is the top-``top_k`` word list.
    """
    counts = collections.Counter(w for s in sentences for w in s.split())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    vocabulary = [w for w, _ in ranked[:top_k]]
    allowed = set(vocabulary)
    return [s for s in sentences if all(w in allowed for w in s.split())], vocabulary


def _raw_sentences(sources: Sequence[str], fortunes_dir: Path, wordnet_dir: Path) -> Iterator[str]:
    """Candidate sentences of the chosen sources, in source order (not yet cleaned)."""
    if "fortunes" in sources:
        yield from read_fortunes(fortunes_dir)
    if "wordnet" in sources:
        yield from read_wordnet_examples(wordnet_dir)


def load_sentences(top_k: int, *, min_words: int = 4, max_words: int = 20,
                   sources: Sequence[str] = SOURCES, fortunes_dir: Path = FORTUNES_DIR,
                   wordnet_dir: Path = WORDNET_DIR) -> SentenceCorpus:
    """All usable sentences of ``sources`` restricted to the ``top_k`` most frequent words."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown text source(s) {unknown}; choose from {list(SOURCES)}")

    sentences, candidates, skipped = clean_sentences(_raw_sentences(sources, fortunes_dir, wordnet_dir),
                                                     min_words=min_words,
                                                     max_words=max_words)
    kept, vocabulary = restrict_to_top_words(sentences, top_k)
    skipped["outside_top_words"] = len(sentences) - len(kept)
    return SentenceCorpus(kept, candidates, skipped, vocabulary)


def lm_sentences(exclude: Iterable[str], *, given: Sequence[str] | None = None, sources: Sequence[str] = SOURCES,
                 span: int = 6, fortunes_dir: Path = FORTUNES_DIR, wordnet_dir: Path = WORDNET_DIR
                 ) -> tuple[list[str], dict[str, int]]:
    """Language-model text: every clean sentence of ``sources`` (any length, any words), or of
    ``given`` sentences (normalized already, kept with their repeats), except those that overlap a
    sentence of ``exclude`` (evaluation sentences).

    A sentence overlaps when it shares a ``span``-word run with an excluded sentence, or contains an
    excluded sentence shorter than ``span`` words. Returns ``(sentences, counts)``.
    """
    banned_runs: set[tuple[str, ...]] = set()
    for sentence in exclude:
        words = tuple(sentence.split())
        if len(words) < span:
            banned_runs.add(words)
        else:
            banned_runs.update(words[i:i + span] for i in range(len(words) - span + 1))
    lengths = sorted({len(r) for r in banned_runs})
    if given is None:
        sentences, candidates, _ = clean_sentences(_raw_sentences(sources, fortunes_dir, wordnet_dir),
                                                   min_words=1, max_words=10_000)
    else:  # the caller's text as it is (repeats carry frequency), empty lines dropped
        sentences = [s for s in given if s.strip()]
        candidates = len(given)
    kept = []
    for sentence in sentences:
        words = tuple(sentence.split())
        if any(words[i:i + n] in banned_runs for n in lengths for i in range(len(words) - n + 1)):
            continue
        kept.append(sentence)
    return kept, {"candidates": candidates, "clean": len(sentences), "overlapping_excluded": len(sentences) - len(kept),
                  "kept": len(kept), "words": sum(len(s.split()) for s in kept)}
