"""The one text normalizer: corpus preparation and WER scoring both use it.

``normalize_text`` lowercases, spells out numbers (cardinals, ordinals, decimals, years stay
cardinal), turns ``&``/``%`` into words, keeps apostrophes inside words and drops every other
symbol. The result is a single space separated string of ``[a-z']`` words.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text", "number_to_words"]

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                      "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    """Spell out a non-negative integer: ``342 -> "three hundred forty two"``."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return number_to_words(high) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return (head + " " + last).strip()


_NUMBER_RE = re.compile(r"(\d[\d,]*)(?:\.(\d+))?(st|nd|rd|th)?")


def _spell_number(match: re.Match[str]) -> str:
    integer, decimals, suffix = match.group(1), match.group(2), match.group(3)
    digits = integer.replace(",", "")
    if not digits:
        return " "
    words = number_to_words(int(digits))
    if suffix:
        words = _ordinal(words)
    if decimals:
        words += " point " + " ".join(_ONES[int(d)] for d in decimals)
    return f" {words} "


def normalize_text(text: str) -> str:
    """Normalize a transcript for training targets and WER scoring.

    >>> normalize_text("Hello, World! It's 3:15 -- 42% & the 2nd.")
    "hello world it's three fifteen forty two percent and the second"
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("\u2019", "'").replace("`", "'").lower()
    text = text.replace("&", " and ").replace("%", " percent ")
    text = _NUMBER_RE.sub(_spell_number, text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    # apostrophes only inside words ("it's", "o'clock"), not as quotes
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)
    return " ".join(text.split())
