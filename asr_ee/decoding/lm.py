"""Token n-gram language model for CTC shallow fusion.

An interpolated Kneser-Ney n-gram over the model's BPE tokens (not words): it needs no lexicon,
leaves the vocabulary open (any word the tokenizer can spell can be recognized) and scores every
token a prefix beam search adds, so partial results are scored too. Sentences are framed by a
start symbol (context only) and an end symbol (counted, and scored by :meth:`NgramLM.score_tokens`;
the streaming beam search never knows where an utterance ends, so it does not add it).

Probabilities (Chen & Goodman's interpolated Kneser-Ney, one discount per order)::

    P(w | h) = max(c(h w) - D, 0) / c(h) + D * N1+(h .) / c(h) * P(w | h[1:])

with continuation counts in place of counts below the highest order, and a uniform distribution
under the unigram. Contexts never seen fall straight through to the shorter context. Rows of
``log P(. | h)`` are computed once per context and cached.

This module estimates the model and keeps its counts (``asr-ee lm`` saves them as ``lm.pt``,
read back with :func:`load_ngram`, which needs torch). Decoding does not use these tables: it
scores with KenLM, on the same model written as ARPA (:mod:`asr_ee.decoding.arpa`), and
:func:`asr_ee.decoding.kenlm.load_lm` gives that decode-time LM (:class:`~asr_ee.decoding.kenlm.TokenLM`, no torch).

Shapes: V vocabulary (the tokenizer's, blank included; blank is never scored).
"""

from __future__ import annotations

import io
import lzma
import math
import os
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from asr_ee.config import ConfigError

if TYPE_CHECKING:
    import torch

    from asr_ee.data.tokenizer import Tokenizer

__all__ = ["NgramLM", "LMState", "build_ngram", "load_ngram", "DEFAULT_LM_WEIGHT",
           "DEFAULT_LENGTH_BONUS"]

# Shallow-fusion defaults, chosen on the offline corpus's dev split (README, "Language model").
DEFAULT_LM_WEIGHT = 0.8
DEFAULT_LENGTH_BONUS = 2.0

MAX_CACHED_ROWS = 4096  # 2 KB each with a 256-token vocabulary
LMState = tuple[int, ...]  # the last order-1 tokens (start symbols pad the beginning)
FORMAT = "asr_ee.token_ngram.v2"


@dataclass
class NgramLM:
    """A token n-gram LM. ``bos``/``eos`` are ids outside the tokenizer's range (``vocab_size`` and
    ``vocab_size + 1``); ``blank`` is never predicted."""

    order: int
    vocab_size: int
    discounts: list[float]                                   # per order 1..n
    tables: list[_Table]                                     # per order: context -> followers' (continuation) counts
    info: dict = field(default_factory=dict)
    _rows: dict[LMState, array] = field(default_factory=dict, repr=False)
    _token_lm: Any = field(default=None, repr=False, compare=False)  # its KenLM copy (asr_ee.decoding.kenlm)

    @property
    def bos(self) -> int:
        return self.vocab_size

    @property
    def eos(self) -> int:
        return self.vocab_size + 1

    def start(self) -> LMState:
        return (self.bos,) * (self.order - 1)

    def advance(self, state: LMState, token: int) -> LMState:
        return (state + (token,))[1:] if self.order > 1 else ()

    def log_prob(self, state: LMState, token: int) -> float:
        """log P(token | state); ``token`` may be :attr:`eos`."""
        return self.row(state)[token]

    def row(self, state: LMState) -> array:
        """log P(. | state) over ``vocab_size + 2`` ids (bos gets -inf). Rows are cached, at most
        ``MAX_CACHED_ROWS`` of them (then the cache starts over), so memory stays flat on endless streams."""
        cached = self._rows.get(state)
        if cached is None:
            if len(self._rows) >= MAX_CACHED_ROWS:
                self._rows.clear()
            cached = array("d", (math.log(p) if p > 0 else -math.inf for p in self._probs(state)))
            self._rows[state] = cached
        return cached

    def _probs(self, state: LMState) -> list[float]:
        size = self.vocab_size + 2
        uniform = 1.0 / (size - 1)                     # every id but bos
        probs = [uniform] * size
        probs[self.bos] = 0.0
        for n in range(1, self.order + 1):             # shortest context first
            context = state[len(state) - (n - 1):] if n > 1 else ()
            table = self.tables[n - 1]
            i = table.index.get(_key(context, size))
            if i is None:
                continue                               # unseen context: keep the shorter one's
            start, stop, total = table.offsets[i], table.offsets[i + 1], table.totals[i]
            d = self.discounts[n - 1]
            backoff = d * (stop - start) / total
            probs = [p * backoff for p in probs]
            for tok, c in zip(table.tokens[start:stop], table.counts[start:stop]):
                probs[tok] += max(c - d, 0.0) / total
        return probs

    def score_tokens(self, tokens: Sequence[int], with_end: bool = True) -> float:
        """log P of a token sequence (optionally with the end symbol)."""
        state, total = self.start(), 0.0
        for t in list(tokens) + ([self.eos] if with_end else []):
            total += self.log_prob(state, t)
            state = self.advance(state, t)
        return total

    def check_tokenizer(self, tokenizer: "Tokenizer") -> None:
        """Raise ConfigError unless this LM was built with ``tokenizer`` (same pieces)."""
        from asr_ee.data.tokenizer import check_lm_tokenizer

        check_lm_tokenizer(self.vocab_size, self.info.get("tokenizer"), tokenizer)

    def num_ngrams(self) -> int:
        return sum(len(table.tokens) for table in self.tables)

    def save(self, path: str | Path) -> None:
        import torch

        payload = {"format": FORMAT, "order": self.order, "vocab_size": self.vocab_size,
                   "discounts": self.discounts, "info": self.info,
                   "tables": [table.pack() for table in self.tables]}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        path = Path(path)
        tmp = path.with_name(f".tmp_{path.name}")  # renamed when complete: never a half-written LM
        try:
            tmp.write_bytes(lzma.compress(buffer.getvalue(), preset=6))  # ~4.5x smaller than raw
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def _key(context: Sequence[int], base: int) -> int:
    """A context as one int (digits in base ``vocab_size + 2``)."""
    key = 0
    for t in context:
        key = key * base + t
    return key


@dataclass
class _Table:
    """One order's n-grams, compact: contexts by key -> a slice of flat token/count arrays (a dict of
    dicts of Python ints would take ~5x the memory: 155 MB for the shipped 4-gram)."""

    index: dict[int, int]     # context key -> context number
    offsets: array            # context number -> start in tokens/counts (one extra at the end)
    totals: array             # context number -> sum of its followers' counts
    tokens: array
    counts: array

    @classmethod
    def from_counts(cls, table: dict[LMState, dict[int, int]], base: int) -> "_Table":
        index, offsets, totals, tokens, counts = {}, array("q", [0]), array("q"), array("i"), array("q")
        for context in sorted(table):
            followers = table[context]
            index[_key(context, base)] = len(index)
            for tok in sorted(followers):
                tokens.append(tok)
                counts.append(followers[tok])
            offsets.append(len(tokens))
            totals.append(sum(followers.values()))
        return cls(index, offsets, totals, tokens, counts)

    def pack(self) -> dict[str, "torch.Tensor"]:
        import torch

        keys = sorted(self.index, key=self.index.__getitem__)
        return {"keys": torch.tensor(keys, dtype=torch.int64),
                "lengths": torch.tensor([b - a for a, b in zip(self.offsets[:-1], self.offsets[1:])], dtype=torch.int32),
                "tokens": torch.tensor(self.tokens, dtype=torch.int32),
                "counts": torch.tensor(self.counts, dtype=torch.int32)}

    @classmethod
    def unpack(cls, packed: dict[str, "torch.Tensor"]) -> "_Table":
        import torch

        lengths = packed["lengths"].to(torch.int64)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
        counts = packed["counts"].to(torch.int64)
        totals = torch.zeros(len(lengths), dtype=torch.int64).index_add_(
            0, torch.repeat_interleave(torch.arange(len(lengths)), lengths), counts)
        keys = packed["keys"].tolist()
        return cls(dict(zip(keys, range(len(keys)))), _array("q", offsets), _array("q", totals),
                   _array("i", packed["tokens"].to(torch.int32)), _array("q", counts))


def _array(typecode: str, tensor: "torch.Tensor") -> array:
    """A 1-D tensor's values as an array, without a list of Python ints on the way."""
    out = array(typecode)
    out.frombytes(tensor.contiguous().numpy().tobytes())
    return out


def load_ngram(path: str | Path) -> NgramLM:
    """Load the counts written by :meth:`NgramLM.save` (needs torch); clear errors for a missing or
    foreign file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"language model {path} not found (build one with `asr-ee lm` or drop --lm)")
    try:
        payload = torch.load(io.BytesIO(lzma.decompress(path.read_bytes())), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ConfigError(f"cannot read language model {path}: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an asr_ee token n-gram LM (format {FORMAT})")
    order = payload["order"]
    tables = [_Table.unpack(t) for t in payload["tables"]]
    return NgramLM(order=order, vocab_size=payload["vocab_size"], discounts=list(payload["discounts"]),
                   tables=tables, info=dict(payload["info"]))


def build_ngram(sentences: Iterable[Sequence[int]], vocab_size: int, order: int = 6,
                min_count: int = 1, blank: int = 0) -> NgramLM:
    """Interpolated Kneser-Ney over token sequences.

    ``min_count`` prunes highest-order n-grams (order >= 2) seen fewer times; lower orders are kept
    whole (they are few, and pruning their continuation counts costs more accuracy than it saves).
    """
    if order < 1:
        raise ConfigError(f"order must be >= 1, got {order}")
    bos, eos = vocab_size, vocab_size + 1
    raw: list[dict[tuple[int, ...], int]] = [defaultdict(int) for _ in range(order)]
    num_sentences = num_tokens = 0
    for tokens in sentences:
        if any(t == blank or not 0 <= t < vocab_size for t in tokens):
            raise ConfigError("sentence tokens must be tokenizer ids other than blank")
        seq = (bos,) * (order - 1) + tuple(tokens) + (eos,)
        for i in range(order - 1, len(seq)):
            for n in range(1, order + 1):
                raw[n - 1][seq[i - n + 1:i + 1]] += 1
        num_sentences += 1
        num_tokens += len(tokens) + 1
    if not num_sentences:
        raise ConfigError("no sentences to build a language model from")
    # below the highest order, Kneser-Ney's continuation counts: how many distinct tokens precede
    # the n-gram; n-grams starting at the sentence start (bos) cannot be preceded and keep counts
    by_order: list[dict[tuple[int, ...], int]] = []
    for n in range(1, order):
        cont: dict[tuple[int, ...], int] = defaultdict(int)
        for gram in raw[n]:
            if gram[1] != bos:
                cont[gram[1:]] += 1
        by_order.append({g: (c if g[0] == bos else cont[g]) for g, c in raw[n - 1].items()})
    by_order.append(raw[order - 1])
    discounts = []
    for n, counts in enumerate(by_order):
        n1 = sum(1 for c in counts.values() if c == 1)
        n2 = sum(1 for c in counts.values() if c == 2)
        discounts.append(n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5)
    if (vocab_size + 2) ** (order - 1) >= 2**63:
        raise ConfigError(f"order {order} with {vocab_size} tokens: contexts do not fit 64-bit keys; lower the order")
    tables: list[_Table] = []
    for n, counts in enumerate(by_order):
        table: dict[LMState, dict[int, int]] = defaultdict(dict)
        for gram, c in counts.items():
            if n == order - 1 and n > 0 and c < min_count:
                continue
            table[gram[:-1]][gram[-1]] = c
        tables.append(_Table.from_counts(table, vocab_size + 2))
    return NgramLM(order=order, vocab_size=vocab_size, discounts=discounts, tables=tables,
                   info={"sentences": num_sentences, "tokens": num_tokens, "min_count": min_count})
