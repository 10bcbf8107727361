"""CTC decoders on flashlight-text: greedy and beam search (with and without the token LM) against
the hand-written reference search, chunk by chunk as in streaming, through beam changes and
search restarts, with token frames for timestamps."""

from __future__ import annotations

import difflib
import random

import numpy as np
import pytest

from asr_ee.decoding.ctc import BeamStreamDecoder, GreedyStreamDecoder, greedy_decode, prefix_beam_search
from asr_ee.decoding.lm import build_ngram
from asr_ee.decoding.reference import reference_greedy_decode, reference_prefix_beam_search

V = 10  # ids 1..9 are tokens, 0 is blank
FUSION = {"lm_weight": 0.7, "length_bonus": 1.5}


def _corpus(seed: int = 0, n: int = 300) -> list[list[int]]:
    """Sentences where 3 is always followed by 4 and 5 never follows 3."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        seq: list[int] = []
        for _ in range(rng.randint(2, 8)):
            t = rng.choice([1, 2, 3, 5, 6, 7, 8, 9])
            seq += [3, 4] if t == 3 else [t]
        out.append(seq)
    return out


@pytest.fixture(scope="module")
def lm():
    return build_ngram(_corpus(), V, order=3)


def _frames_of(tokens: list[int], rng: np.random.Generator, max_hold: int = 3) -> list[int]:
    """A CTC path for ``tokens``: blanks between, tokens held 1 to ``max_hold`` frames (repeats get
    a blank). With the LM, ``max_hold`` is 1: the lexicon decoder cannot hold a token, so a token's
    later frames count as blank (see ctc.py) and dropping a held token costs one frame's blank,
    not all of them: the LM can then outvote the acoustics where the reference search would not."""
    path = [0] * int(rng.integers(0, 3))
    for i, token in enumerate(tokens):
        if i and tokens[i - 1] == token:
            path.append(0)
        path += [token] * int(rng.integers(1, max_hold + 1))
        path += [0] * int(rng.integers(0, 4))
    return path


def _peaky(path: list[int], rng: np.random.Generator) -> np.ndarray:
    """(T, V) log-posteriors shaped like a CTC model's: each frame's best token is ``path[t]`` (about
    0.95); on a token's frames blank comes second, the other tokens far below."""
    logits = rng.normal(size=(len(path), V)).astype(np.float32) * 0.5 - 6.0
    logits[:, 0] = -3.0
    logits[np.arange(len(path)), path] = 0.0
    return (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)


def _uncertain(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(frames, V)) * 3.0
    logits[:, 0] += 1.5
    return (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)


def _in_chunks(decoder, log_probs: np.ndarray, size: int):
    for start in range(0, len(log_probs), size):
        decoder.accept(log_probs[start:start + size])
    return decoder


def test_greedy_gives_tokens_frames_and_trailing_blanks_chunk_by_chunk() -> None:
    path = [0, 3, 3, 0, 5, 0, 5, 5, 2, 0, 0]
    lp = _peaky(path, np.random.default_rng(0))
    decoder = _in_chunks(GreedyStreamDecoder(), lp, 3)
    assert decoder.tokens == greedy_decode(lp) == reference_greedy_decode(lp) == [3, 5, 5, 2]
    assert decoder.token_frames == [1, 4, 6, 8]
    assert decoder.frames == 11 and decoder.trailing_blank_frames == 2


@pytest.mark.parametrize("with_lm", [False, True])
def test_confident_posteriors_decode_as_the_reference_does(with_lm: bool, lm) -> None:
    """Peaky posteriors of sentences the LM knows (held tokens, repeats after a blank): beam search
    with or without the LM gives what the reference search gives, mostly the spoken tokens (the LM
    outvotes a token now and then, in both), at frames where they are spoken."""
    rng = np.random.default_rng(1)
    spoken = 0
    for sentence in _corpus(seed=5, n=20):
        path = _frames_of(sentence, rng, max_hold=1 if with_lm else 3)
        lp = _peaky(path, rng)
        fusion = {"lm": lm, **FUSION} if with_lm else {}
        decoder = _in_chunks(BeamStreamDecoder(beam=4, **fusion), lp, 4)
        assert decoder.tokens == reference_prefix_beam_search(lp, beam=4, **fusion)
        assert all(path[t] == token for t, token in zip(decoder.token_frames, decoder.tokens))
        spoken += decoder.tokens == sentence
        if not with_lm:
            assert decoder.tokens == sentence
            assert decoder.token_frames == [t for t in range(len(path)) if path[t] and (t == 0 or path[t - 1] != path[t])]
    assert spoken >= 16


def _ctc_log_prob(lp: np.ndarray, tokens: list[int]) -> float:
    """log P(tokens | posteriors), summed over every CTC alignment (the forward algorithm)."""
    states = [0]
    for token in tokens:
        states += [token, 0]
    alpha = np.full(len(states), -np.inf)
    alpha[0] = lp[0, 0]
    if len(states) > 1:
        alpha[1] = lp[0, states[1]]
    for t in range(1, len(lp)):
        previous = alpha.copy()
        for s in range(len(states)):
            incoming = [previous[s]] + ([previous[s - 1]] if s else [])
            if s > 1 and states[s] != 0 and states[s] != states[s - 2]:
                incoming.append(previous[s - 2])
            alpha[s] = np.logaddexp.reduce(incoming) + lp[t, states[s]]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if len(states) > 1 else alpha[-1])


def test_beam_search_matches_the_reference_on_uncertain_posteriors(lm) -> None:
    """Flat posteriors, where pruning decides: the two searches prune alike but not identically
    (flashlight ranks a prefix's blank- and token-ending hypotheses apart and drops hypotheses
    15 nats behind), so their best prefixes differ at times, but never by much probability."""
    same = changed = 0
    for seed in range(20):
        lp = _uncertain(40, seed)
        new, old = prefix_beam_search(lp, beam=6), reference_prefix_beam_search(lp, beam=6)
        same += new == old
        assert _ctc_log_prob(lp, new) > _ctc_log_prob(lp, old) - 1.5
        changed += prefix_beam_search(lp, beam=6, lm=lm, **FUSION) != new
    assert same >= 6 and changed >= 15


@pytest.mark.parametrize("with_lm", [False, True])
def test_chunk_by_chunk_equals_the_whole_utterance(with_lm: bool, lm) -> None:
    fusion = {"lm": lm, **FUSION} if with_lm else {}
    for seed in range(5):
        lp = _uncertain(50, seed)
        whole = BeamStreamDecoder(beam=5, **fusion)
        whole.accept(lp)
        for size in (1, 4, 7):
            chunked = _in_chunks(BeamStreamDecoder(beam=5, **fusion), lp, size)
            assert chunked.tokens == whole.tokens and chunked.token_frames == whole.token_frames
            assert list(chunked.beams) == list(whole.beams)


def test_runs_of_blank_frames_are_skipped_without_changing_the_search(lm) -> None:
    """Blank-only frames after the first of a run are not fed to flashlight: the result equals the
    reference search (which steps every frame), and token frames still count every frame."""
    rng = np.random.default_rng(3)
    for sentence in _corpus(seed=7, n=10):
        path = []
        for token in sentence:
            path += [0] * int(rng.integers(5, 15)) + [token]
        logits = np.full((len(path), V), -20.0, dtype=np.float32)
        logits[np.arange(len(path)), path] = 0.0
        logits[np.array(path) != 0] += rng.normal(size=(np.count_nonzero(path), V)).astype(np.float32) * 2
        lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        decoder = _in_chunks(BeamStreamDecoder(beam=4, lm=lm, **FUSION), lp, 6)
        assert len(decoder._fed_frames) < len(path) / 3
        assert decoder.tokens == reference_prefix_beam_search(lp, beam=4, lm=lm, **FUSION)
        assert decoder.token_frames == [t for t, token in enumerate(path) if token]


@pytest.mark.parametrize("with_lm", [False, True])
def test_narrowing_the_beam_midway_keeps_the_result(with_lm: bool, lm) -> None:
    """The load controller narrows and widens the beam between chunks: each change starts a new
    search that carries the committed prefix (LM context and CTC state)."""
    rng = np.random.default_rng(4)
    fusion = {"lm": lm, **FUSION} if with_lm else {}
    for sentence in _corpus(seed=9, n=10):
        path = _frames_of(sentence, rng, max_hold=1 if with_lm else 3)
        lp = _peaky(path, rng)
        decoder = BeamStreamDecoder(beam=6, **fusion)
        for i, start in enumerate(range(0, len(lp), 3)):
            decoder.beam = [6, 2, 1, 4][i % 4]
            decoder.accept(lp[start:start + 3])
        assert decoder.tokens == sentence
        assert all(path[t] == token for t, token in zip(decoder.token_frames, sentence))
    with pytest.raises(ValueError, match="beam must be >= 1"):
        decoder.beam = 0


def test_a_restart_carries_the_lm_context(lm) -> None:
    """``max_search_frames`` commits the best prefix and starts over: the LM still knows the last
    tokens. After "1 3" the acoustics prefer 5 slightly, the LM knows 3 is followed by 4."""
    def frame(probs: dict[int, float]) -> list[float]:
        rest = (1.0 - sum(probs.values())) / (V - len(probs))
        return [np.log(probs.get(v, rest)) for v in range(V)]

    lp = np.array([frame({1: 0.9}), frame({0: 0.9}), frame({3: 0.9}), frame({0: 0.9}), frame({0: 0.9}),
                   frame({5: 0.5, 4: 0.4}), frame({0: 0.9})], dtype=np.float32)
    assert prefix_beam_search(lp, beam=4) == [1, 3, 5]
    for max_frames in (2, 3, 4, 100):
        decoder = BeamStreamDecoder(beam=4, lm=lm, **FUSION, max_search_frames=max_frames)
        _in_chunks(decoder, lp, 2)
        assert decoder.tokens == [1, 3, 4], max_frames
        assert decoder.token_frames == [0, 2, 5]


def test_long_input_keeps_the_search_bounded(lm) -> None:
    rng = np.random.default_rng(6)
    sentences = _corpus(seed=11, n=40)
    tokens = [t for s in sentences for t in s]
    path = _frames_of(tokens, rng, max_hold=1)
    lp = _peaky(path, rng)
    decoder = _in_chunks(BeamStreamDecoder(beam=4, lm=lm, **FUSION, max_search_frames=64), lp, 8)
    # a restart commits the best prefix then: a few LM decisions near one differ from one long search
    reference = reference_prefix_beam_search(lp, beam=4, lm=lm, **FUSION)
    assert difflib.SequenceMatcher(None, decoder.tokens, reference, autojunk=False).ratio() > 0.97
    assert len(decoder._fed_frames) <= 64 + 8 + 2 * lm.order
    assert decoder.memory_bytes() < 200_000


def test_beams_list_the_live_prefixes_best_first(lm) -> None:
    lp = _uncertain(30, 0)
    decoder = _in_chunks(BeamStreamDecoder(beam=4, lm=lm, **FUSION), lp, 5)
    beams = decoder.beams
    assert 1 < len(beams) <= 8
    assert list(beams)[0] == tuple(decoder.tokens)
    scores = list(beams.values())
    assert scores == sorted(scores, reverse=True)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="beam must be >= 1"):
        BeamStreamDecoder(beam=0)
    decoder = BeamStreamDecoder(beam=2)
    decoder.accept(_uncertain(3, 0))
    with pytest.raises(ValueError, match="vocabulary changed"):
        decoder.accept(np.zeros((2, V + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="frames, vocabulary"):
        greedy_decode(np.zeros(5, dtype=np.float32))
    empty = BeamStreamDecoder(beam=2)
    empty.accept(np.zeros((0, V), dtype=np.float32))
    assert empty.tokens == [] and empty.token_frames == [] and empty.frames == 0


def test_tokens_held_with_blank_far_below_are_not_emitted_twice(lm) -> None:
    """A model sure of its held tokens (blank 15 nats below on their frames): the lexicon decoder
    cannot hold a token, and scoring those frames as blank alone made it re-emit the token after
    a frame of blank ("side" -> "sideide"); with the token's probability moved to blank it does not."""
    rng = np.random.default_rng(8)
    for sentence in _corpus(seed=13, n=10):
        path = []
        for i, token in enumerate(sentence):
            path += [0] * int(rng.integers(0 if i and sentence[i - 1] != token else 1, 3))
            path += [token] * int(rng.integers(3, 6))
        logits = np.full((len(path), V), -20.0, dtype=np.float32)
        logits[:, 0] = -15.0
        logits[np.arange(len(path)), path] = 0.0
        lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        assert prefix_beam_search(lp, beam=8, lm=lm, lm_weight=0.8, length_bonus=2.0) == sentence
