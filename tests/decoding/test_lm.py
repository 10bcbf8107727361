"""Token n-gram LM: a proper distribution, Kneser-Ney counts, save/load, pruning, and shallow fusion
in the CTC prefix beam search (offline and chunk by chunk); the reference search (the hand-written
one the flashlight decoders replaced) against a textbook search."""

from __future__ import annotations

import io
import lzma
import math
import random
from pathlib import Path

import pytest
import torch

from asr_ee.config import ConfigError
from asr_ee.decoding.ctc import BeamStreamDecoder, prefix_beam_search
from asr_ee.decoding.lm import build_ngram, load_ngram
from asr_ee.decoding.reference import ReferenceBeamDecoder

V = 8  # ids 1..7 are tokens, 0 is blank


def _corpus(seed: int = 0, n: int = 300) -> list[list[int]]:
    """Sentences where 3 is always followed by 4 and 5 never follows 3."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        seq = []
        for _ in range(rng.randint(2, 8)):
            t = rng.choice([1, 2, 3, 5, 6, 7])
            seq += [3, 4] if t == 3 else [t]
        out.append(seq)
    return out


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("min_count", [1, 2])
def test_every_context_gives_a_distribution(order: int, min_count: int) -> None:
    lm = build_ngram(_corpus(), V, order=order, min_count=min_count)
    contexts = [lm.start(), lm.advance(lm.start(), 3), (7,) * (order - 1), (1, 2, 3, 4)[-(order - 1):] if order > 1 else ()]
    for state in contexts:
        row = lm.row(state)
        assert len(row) == V + 2
        assert row[lm.bos] == -math.inf
        assert sum(math.exp(x) for x in row) == pytest.approx(1.0, abs=1e-9)


def test_counts_shape_the_probabilities() -> None:
    lm = build_ngram(_corpus(), V, order=3)
    after_3 = lm.advance(lm.advance(lm.start(), 1), 3)
    assert lm.log_prob(after_3, 4) > math.log(0.9)           # 3 is always followed by 4
    assert lm.log_prob(after_3, 5) < lm.log_prob(after_3, 4) - 4
    # a sentence the corpus could produce beats one it never does
    assert lm.score_tokens([1, 3, 4, 2]) > lm.score_tokens([1, 3, 5, 2]) + 4


def test_unigram_kneser_ney_by_hand() -> None:
    """Order 2 on a two-sentence corpus, against the formula worked out by hand."""
    lm = build_ngram([[1, 2], [1, 3]], 4, order=2)  # bos=4, eos=5
    # bigram counts: (4,1):2 (1,2):1 (1,3):1 (2,5):1 (3,5):1 -> D2 = n1/(n1+2 n2) = 4/(4+2) = 2/3
    d2 = lm.discounts[1]
    assert d2 == pytest.approx(2 / 3)
    # continuation counts: 1<-{bos}:1, 2<-{1}:1, 3<-{1}:1, 5<-{2,3}:2; total 5; all singletons but
    # one doubleton: D1 = 3/(3+2) = 0.6
    d1 = lm.discounts[0]
    assert d1 == pytest.approx(0.6)
    uniform = 1 / 5                                    # every id but bos
    p1 = {1: 1, 2: 1, 3: 1, 5: 2, 0: 0}
    uni = {t: max(c - d1, 0) / 5 + d1 * 4 / 5 * uniform for t, c in p1.items()}
    # P(2 | 1) = (1 - D2)/2 + D2 * 2/2 * P_uni(2)
    assert math.exp(lm.log_prob((1,), 2)) == pytest.approx((1 - d2) / 2 + d2 * 2 / 2 * uni[2])
    assert math.exp(lm.log_prob((1,), 5)) == pytest.approx(d2 * uni[5])
    assert math.exp(lm.log_prob((2,), 5)) == pytest.approx((1 - d2) / 1 + d2 * uni[5])


def test_save_load_round_trip_and_pruning(tmp_path: Path) -> None:
    full = build_ngram(_corpus(), V, order=4, min_count=1)
    pruned = build_ngram(_corpus(), V, order=4, min_count=3)
    assert pruned.num_ngrams() < full.num_ngrams()
    full.save(tmp_path / "lm.pt")
    loaded = load_ngram(tmp_path / "lm.pt")
    assert loaded.num_ngrams() == full.num_ngrams()
    for state in [loaded.start(), (3, 4, 1), (7, 7, 7)]:
        assert list(loaded.row(state)) == pytest.approx(list(full.row(state)))


def test_bad_lm_files_and_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_ngram(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="cannot read"):
        load_ngram(tmp_path / "junk.pt")
    buffer = io.BytesIO()
    torch.save({"format": "something else"}, buffer)
    (tmp_path / "other.pt").write_bytes(lzma.compress(buffer.getvalue()))
    with pytest.raises(ConfigError, match="not an asr_ee token n-gram LM"):
        load_ngram(tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="blank"):
        build_ngram([[1, 0, 2]], V)
    with pytest.raises(ConfigError, match="no sentences"):
        build_ngram([], V)


def _posteriors(frames: list[dict[int, float]]) -> torch.Tensor:
    """(T, V) log-probs: each frame's listed probabilities, the rest spread evenly."""
    rows = []
    for spec in frames:
        rest = (1.0 - sum(spec.values())) / (V - len(spec))
        rows.append([math.log(spec.get(v, rest)) for v in range(V)])
    return torch.tensor(rows)


def test_fusion_lets_the_lm_decide_an_acoustic_tie() -> None:
    lm = build_ngram(_corpus(), V, order=3)
    # "1 3 ?" where the acoustics slightly prefer 5 over 4; the LM knows 3 is followed by 4
    lp = _posteriors([{1: 0.9}, {0: 0.9}, {3: 0.9}, {0: 0.9}, {5: 0.5, 4: 0.4}, {0: 0.9}])
    assert prefix_beam_search(lp, beam=4) == [1, 3, 5]
    assert prefix_beam_search(lp, beam=4, lm=lm, lm_weight=0.5, length_bonus=1.0) == [1, 3, 4]
    assert prefix_beam_search(lp, beam=4, lm=lm, lm_weight=0.0) == [1, 3, 5]


def test_fused_search_is_the_same_chunk_by_chunk() -> None:
    lm = build_ngram(_corpus(), V, order=3)
    torch.manual_seed(0)
    lp = torch.randn(40, V).mul(3).log_softmax(-1)
    whole = prefix_beam_search(lp, beam=6, lm=lm, lm_weight=0.7, length_bonus=1.0)
    decoder = BeamStreamDecoder(beam=6, lm=lm, lm_weight=0.7, length_bonus=1.0)
    for start in range(0, 40, 7):
        decoder.accept(lp[start:start + 7])
    assert decoder.tokens == whole
    assert whole != prefix_beam_search(lp, beam=6)  # the LM changed something here


def test_lm_row_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import asr_ee.decoding.lm as lm_module

    monkeypatch.setattr(lm_module, "MAX_CACHED_ROWS", 10)
    lm = build_ngram(_corpus(), V, order=4)
    for a in range(1, V):
        for b in range(1, V):
            lm.row((a, b, 1))
    assert len(lm._rows) <= 10


def _reference_beams(lp: torch.Tensor, beam: int, lm=None, lm_weight: float = 0.0, length_bonus: float = 0.0,
                     prune_top_k: int = 8, prune_log_ratio: float = 10.0) -> dict:
    """Textbook CTC prefix beam search, every frame a full step (no shortcut for blank-only
    frames), scores and LM sums recomputed from scratch: what ReferenceBeamDecoder must equal."""
    def lae(a: float, b: float) -> float:
        return a if b == -math.inf else b if a == -math.inf else max(a, b) + math.log1p(math.exp(-abs(a - b)))

    def lm_sum(prefix: tuple) -> float:
        state, total = lm.start(), 0.0
        for t in prefix:
            total += lm.log_prob(state, t)
            state = lm.advance(state, t)
        return total

    def score(prefix: tuple, pb: float, pnb: float) -> float:
        s = lae(pb, pnb)
        return s if lm is None else s + lm_weight * lm_sum(prefix) + length_bonus * len(prefix)

    beams = {(): (0.0, -math.inf)}
    for row in lp:
        top_lp, top_ids = row.topk(prune_top_k)
        cands = [(a, b) for a, b in zip(top_lp.tolist(), top_ids.tolist()) if a >= top_lp[0].item() - prune_log_ratio]
        nxt: dict = {}
        for prefix, (pb, pnb) in beams.items():
            for p, tok in cands:
                if tok == 0:
                    b, nb = nxt.get(prefix, (-math.inf, -math.inf))
                    nxt[prefix] = (lae(b, lae(pb, pnb) + p), nb)
                    continue
                ext = prefix + (tok,)
                b, nb = nxt.get(ext, (-math.inf, -math.inf))
                if prefix and tok == prefix[-1]:
                    nxt[ext] = (b, lae(nb, pb + p))
                    b2, nb2 = nxt.get(prefix, (-math.inf, -math.inf))
                    nxt[prefix] = (b2, lae(nb2, pnb + p))
                else:
                    nxt[ext] = (b, lae(nb, lae(pb, pnb) + p))
        beams = dict(sorted(nxt.items(), key=lambda kv: score(kv[0], *kv[1]), reverse=True)[:beam])
    return beams


@pytest.mark.parametrize("with_lm", [False, True])
def test_reference_search_equals_the_textbook_search_on_confident_blank_frames(with_lm: bool) -> None:
    """Frames where only blank survives pruning take a shortcut in the reference search; on posteriors
    with many such frames the beams (prefixes, both log-probs) equal the full search's."""
    lm = build_ngram(_corpus(), V, order=3) if with_lm else None
    torch.manual_seed(1)
    logits = torch.randn(60, V).mul(3)
    confident = torch.rand(60) < 0.5
    logits[confident, 0] += 30.0            # blank far ahead: the others fall outside the 10-nat window
    lp = logits.log_softmax(-1)
    decoder = ReferenceBeamDecoder(beam=5, lm=lm, lm_weight=0.7 if lm else 0.0, length_bonus=1.0 if lm else 0.0)
    for start in range(0, 60, 8):
        decoder.accept(lp[start:start + 8])
    expected = _reference_beams(lp, 5, lm, 0.7 if lm else 0.0, 1.0 if lm else 0.0)
    assert list(decoder.beams) == list(expected)
    for prefix, (pb, pnb) in expected.items():
        assert decoder.beams[prefix][0] == pytest.approx(pb, abs=1e-9)
        assert decoder.beams[prefix][1] == pytest.approx(pnb, abs=1e-9)
    assert len(decoder.tokens) > 3
