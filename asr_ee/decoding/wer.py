"""Word error rate with kaldialign, on text normalized by the project's one normalizer."""

from __future__ import annotations

from dataclasses import dataclass

import kaldialign

from asr_ee.text import normalize_text

__all__ = ["WordErrors", "word_errors"]

EPS = "*"


@dataclass
class WordErrors:
    ins: int = 0
    dels: int = 0
    subs: int = 0
    num_words: int = 0

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.subs

    @property
    def wer(self) -> float:
        """In percent; 0 reference words with no errors is 0%, with errors 100% per error."""
        if self.num_words == 0:
            return 0.0 if self.errors == 0 else 100.0 * self.errors
        return 100.0 * self.errors / self.num_words

    def __add__(self, other: "WordErrors") -> "WordErrors":
        return WordErrors(self.ins + other.ins, self.dels + other.dels, self.subs + other.subs,
                          self.num_words + other.num_words)


def word_errors(reference: str, hypothesis: str) -> WordErrors:
    ref, hyp = normalize_text(reference).split(), normalize_text(hypothesis).split()
    ins = dels = subs = 0
    for r, h in kaldialign.align(ref, hyp, EPS):
        if r == EPS:
            ins += 1
        elif h == EPS:
            dels += 1
        elif r != h:
            subs += 1
    return WordErrors(ins, dels, subs, len(ref))
