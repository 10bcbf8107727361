"""The token n-gram LM as an ARPA file, the format KenLM reads (and flashlight-text's decoder with it).

:func:`write_arpa` turns an :class:`~asr_ee.decoding.lm.NgramLM` (interpolated Kneser-Ney) into the
equivalent back-off model, exactly::

    P(w | h) = alpha(h, w) + gamma(h) * P(w | h[1:])      (Kneser-Ney, h seen)
    listed n-gram "h w":  log10 P(w | h)                  back-off weight of "h": log10 gamma(h)

Words are token ids written in decimal (``"17"``); the tokenizer's blank (id 0, never predicted) is
``<unk>`` and keeps the probability mass the unigram gives it, so every context's distribution still
sums to one. The LM pads sentence starts with ``order - 1`` start symbols; ARPA has one ``<s>``, so
every n-gram whose context begins with start symbols collapses onto ``<s>`` followed by its real
tokens, with the probability of the fully padded context (the only one a query ever sees) and a
back-off weight that multiplies the weights of every padded length. KenLM's log-probabilities then
equal :meth:`NgramLM.log_prob` (converted to log10) to float precision.

The tokenizer fingerprint and the LM's build information travel beside the ARPA file, in
``<file>.json`` (:func:`sidecar_path`). Nothing here needs torch.

Shapes: V vocabulary; keys are n-grams as integers, digits in base ``V + 2`` (ids ``V`` and
``V + 1`` are the start and end symbols).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:
    from asr_ee.decoding.lm import NgramLM

__all__ = ["write_arpa", "sidecar_path", "read_sidecar", "token_word", "ARPA_FORMAT", "LOG10_E"]

ARPA_FORMAT = "asr_ee.token_ngram.arpa.v1"
LOG10_E = 1.0 / math.log(10.0)
_NO_PROB = -99.0  # log10 P(<s>): never predicted (the usual ARPA convention)


def token_word(token: int) -> str:
    """The ARPA word of a token id."""
    return str(token)


def sidecar_path(path: str | Path) -> Path:
    """Where the LM's information (tokenizer fingerprint, build details) lives beside ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar(path: str | Path) -> dict:
    """The information written beside an ARPA file ({} when there is none)."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    return json.loads(side.read_text(encoding="utf-8"))


class _Order:
    """One order's n-grams as sorted keys with log10 probabilities, and its contexts' back-offs."""

    def __init__(self, keys: np.ndarray, log10_probs: np.ndarray, context_keys: np.ndarray,
                 log10_gammas: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        self.keys, self.log10_probs = keys[order], log10_probs[order]
        order = np.argsort(context_keys, kind="stable")
        self.context_keys, self.log10_gammas = context_keys[order], log10_gammas[order]

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, log10 P) of n-gram keys (P undefined where not found)."""
        return _find(self.keys, self.log10_probs, keys)

    def gamma(self, context_keys: np.ndarray) -> np.ndarray:
        """log10 gamma of contexts; 0 for contexts never seen (they fall through unweighted)."""
        found, values = _find(self.context_keys, self.log10_gammas, context_keys)
        return np.where(found, values, 0.0)


def _find(sorted_keys: np.ndarray, values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool), np.zeros(len(keys))
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys, values[at]


def _interpolate(lm: "NgramLM") -> list[_Order]:
    """Per order n (index n - 1): every listed n-gram's interpolated log10 P(w | h) at that order
    (alpha + gamma * the order below, which lists every suffix of a listed n-gram)."""
    base = lm.vocab_size + 2
    orders: list[_Order] = []
    below: _Order | None = None
    for n, (table, d) in enumerate(zip(lm.tables, lm.discounts), start=1):
        keys_by_number = np.array(sorted(table.index, key=table.index.__getitem__), dtype=np.int64)
        offsets = np.frombuffer(table.offsets, dtype=np.int64)
        lengths = np.diff(offsets)
        totals = np.frombuffer(table.totals, dtype=np.int64).astype(np.float64)
        tokens = np.frombuffer(table.tokens, dtype=np.int32).astype(np.int64)
        counts = np.frombuffer(table.counts, dtype=np.int64).astype(np.float64)
        gammas = d * lengths / totals                                   # per context
        context_of_entry = np.repeat(np.arange(len(lengths)), lengths)
        keys = keys_by_number[context_of_entry] * base + tokens
        alpha = np.maximum(counts - d, 0.0) / totals[context_of_entry]
        if below is None:
            lower = np.full(len(keys), 1.0 / (base - 1))                # uniform over every id but bos
        else:
            found, lower_log10 = below.lookup(keys % base ** (n - 1))
            if not found.all():
                raise ValueError(f"order {n}: an n-gram's suffix is missing from order {n - 1}")
            lower = 10.0 ** lower_log10
        probs = alpha + gammas[context_of_entry] * lower
        below = _Order(keys, np.log10(probs), keys_by_number, np.log10(gammas))
        orders.append(below)
    return orders


def _query(orders: list[_Order], states: np.ndarray, words: np.ndarray, base: int) -> np.ndarray:
    """log10 P(word | state) for (N, order - 1) states and (N,) words, by backing off."""
    result = np.zeros(len(words))
    done = np.zeros(len(words), dtype=bool)
    for n in range(len(orders), 0, -1):
        context = states[:, states.shape[1] - (n - 1):] if n > 1 else states[:, :0]
        context_keys = np.zeros(len(words), dtype=np.int64)
        for column in context.T:
            context_keys = context_keys * base + column
        found, values = orders[n - 1].lookup(context_keys * base + words)
        take = found & ~done
        result[take] += values[take]
        back = ~found & ~done
        result[back] += orders[n - 1].gamma(context_keys[back])
        done |= found
    return result


def _digits(keys: np.ndarray, length: int, base: int) -> np.ndarray:
    """(N,) keys -> (N, length) ids, most significant first."""
    out = np.empty((len(keys), length), dtype=np.int64)
    rest = keys.copy()
    for i in range(length - 1, -1, -1):
        out[:, i] = rest % base
        rest //= base
    return out


def _entries(lm: "NgramLM") -> list[dict[tuple[int, ...], list[float]]]:
    """Per ARPA order: n-gram (ids, start symbol = ``lm.bos``) -> [log10 P, log10 back-off or None]."""
    base, bos, order = lm.vocab_size + 2, lm.bos, lm.order
    orders = _interpolate(lm)
    arpa: list[dict[tuple[int, ...], list]] = [dict() for _ in range(order)]
    for n, level in enumerate(orders, start=1):
        grams = _digits(level.keys, n, base)
        starts = grams[:, 0] == bos if n > 1 else np.zeros(len(grams), dtype=bool)
        plain_contexts = dict(zip(level.context_keys.tolist(), level.log10_gammas.tolist()))
        for gram, log10_p in zip(map(tuple, grams[~starts].tolist()), level.log10_probs[~starts].tolist()):
            arpa[n - 1][gram] = [log10_p, None]
        collapsed = {_collapse(g, bos) for g in map(tuple, grams[starts].tolist())}
        for gram in collapsed:
            arpa[len(gram) - 1].setdefault(gram, [0.0, None])
        if n > 1:  # back-off weights of this order's plain contexts sit on the lower order's lines
            for key, log10_g in plain_contexts.items():
                context = tuple(_digits(np.array([key]), n - 1, base)[0].tolist())
                if context[0] != bos:
                    arpa[n - 2][context][1] = log10_g
    _fill_start_probabilities(lm, orders, arpa)
    _fill_start_backoffs(lm, orders, arpa)
    unseen = float(orders[0].gamma(np.zeros(1, dtype=np.int64))[0]) + math.log10(1.0 / (base - 1))
    for token in list(range(lm.vocab_size)) + [lm.eos]:   # every id is a word, seen in the text or not
        arpa[0].setdefault((token,), [unseen, None])
    return arpa


def _collapse(gram: tuple[int, ...], bos: int) -> tuple[int, ...]:
    """(bos, bos, x, w) -> (bos, x, w)."""
    k = 0
    while k < len(gram) and gram[k] == bos:
        k += 1
    return (bos,) + gram[k:]


def _fill_start_probabilities(lm: "NgramLM", orders: list[_Order], arpa: list[dict]) -> None:
    """ "<s> x w": log10 P(w | bos ... bos x), the fully padded context a query sees."""
    base, bos, order = lm.vocab_size + 2, lm.bos, lm.order
    grams = [g for level in arpa[1:] for g in level if g[0] == bos]
    if not grams:
        return
    states = np.array([(bos,) * (order - 1 - (len(g) - 2)) + g[1:-1] for g in grams], dtype=np.int64)
    values = _query(orders, states, np.array([g[-1] for g in grams], dtype=np.int64), base)
    for gram, value in zip(grams, values.tolist()):
        arpa[len(gram) - 1][gram][0] = value


def _fill_start_backoffs(lm: "NgramLM", orders: list[_Order], arpa: list[dict]) -> None:
    """ "<s> x": the product of the weights of every padded context bos^k x (k = 1 .. order-1-|x|)."""
    base, bos, order = lm.vocab_size + 2, lm.bos, lm.order
    arpa[0][(bos,)] = [_NO_PROB, None]
    contexts = [g for level in arpa[:order - 1] for g in level if g[0] == bos]
    for context in contexts:
        real = context[1:]
        total = 0.0
        for k in range(1, order - len(real)):
            padded = (bos,) * k + real
            key = 0
            for t in padded:
                key = key * base + t
            total += float(orders[len(padded)].gamma(np.array([key], dtype=np.int64))[0])
        arpa[len(context) - 1][context][1] = total


def _lines(lm: "NgramLM", arpa: list[dict], unk: float) -> Iterator[str]:
    bos, eos, order = lm.bos, lm.eos, lm.order
    names = {bos: "<s>", eos: "</s>"}

    def word(t: int) -> str:
        return names.get(t) or token_word(t)

    yield "\\data\\"
    for n in range(1, order + 1):
        yield f"ngram {n}={len(arpa[n - 1]) + (1 if n == 1 else 0)}"  # + <unk>
    for n in range(1, order + 1):
        yield ""
        yield f"\\{n}-grams:"
        if n == 1:  # the blank's unigram share (never seen: the uniform floor)
            yield f"{unk:.7g}\t<unk>\t0"
        for gram, (log10_p, backoff) in sorted(arpa[n - 1].items()):
            text = " ".join(word(t) for t in gram)
            if n < order:
                yield f"{log10_p:.7g}\t{text}\t{(backoff or 0.0):.7g}"
            else:
                yield f"{log10_p:.7g}\t{text}"
    yield ""
    yield "\\end\\"


def write_arpa(lm: "NgramLM", path: str | Path, info: dict | None = None) -> Path:
    """Write ``lm`` as ARPA (gzipped when ``path`` ends in ``.gz``) and its information beside it
    (:func:`sidecar_path`: the LM's ``info``, tokenizer fingerprint included, plus ``info``).
    Written to temporary names and renamed: never a half-written LM. Returns ``path``."""
    arpa = _entries(lm)
    unseen = arpa[0].pop((0,))[0]  # the blank's entry: written as <unk>
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp_{path.name}")
    try:
        with (gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) if path.suffix == ".gz"
              else open(tmp, "w", encoding="utf-8")) as f:
            for line in _lines(lm, arpa, unseen):
                f.write(line + "\n")
        meta = {"format": ARPA_FORMAT, "order": lm.order, "vocab_size": lm.vocab_size,
                "ngrams": sum(len(level) for level in arpa), **lm.info, **(info or {})}
        side_tmp = sidecar_path(tmp)
        side_tmp.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        os.replace(side_tmp, sidecar_path(path))
    finally:
        tmp.unlink(missing_ok=True)
        sidecar_path(tmp).unlink(missing_ok=True)
    return path
