"""An hour of audio through one stream in fast mode: the carried state stays the same size."""

from __future__ import annotations

import psutil
import pytest

from asr_ee.exits.criteria import ExitCriterion
from asr_ee.models import SkipPolicy
from asr_ee.streaming import EndpointConfig, EndpointRule, Recognizer, StreamingConfig
from streaming_helpers import synthetic_speech

PIECE_S = 10.0
HOUR_S = 3600.0


def _stream_an_hour(recognizer: Recognizer, stream, after_piece) -> tuple[list[int], list[int]]:
    """Feed an hour of synthetic speech in 10 s pieces, decoding as it comes and resetting at
    endpoints; after each piece call ``after_piece()``. Returns the stream's carried bytes and the
    process's RSS after each piece."""
    pieces = [synthetic_speech(PIECE_S, seed=s) for s in range(3)]
    process = psutil.Process()
    carried, rss = [], []
    for k in range(int(HOUR_S / PIECE_S)):
        stream.accept_waveform(16000, pieces[k % len(pieces)])
        while recognizer.is_ready(stream):
            recognizer.decode(stream)
            if recognizer.is_endpoint(stream):
                recognizer.reset(stream)
        carried.append(stream.buffer_bytes())
        rss.append(process.memory_info().rss)
        after_piece()
    return carried, rss


@pytest.mark.slow
@pytest.mark.parametrize("skip_policy", [SkipPolicy.RECOMPUTE, SkipPolicy.COPY])
def test_memory_stays_flat_over_an_hour_of_audio(tiny_pretrained, skip_policy: SkipPolicy) -> None:
    config = StreamingConfig(chunk_frames=32, left_context_chunks=2, criterion=ExitCriterion("entropy", 0.963),
                             skip_policy=skip_policy, controller=None, max_trace_chunks=500,
                             endpoint=EndpointConfig(rule3=EndpointRule(False, 0.0, 20.0)))
    recognizer = Recognizer(tiny_pretrained, config)
    stream = recognizer.create_stream()
    encoder: list[int] = []
    carried, rss = _stream_an_hour(recognizer, stream, lambda: encoder.append(stream.encoder_state.memory_bytes()))
    warm = int(300 / PIECE_S)  # after five minutes
    assert stream.frames_done >= HOUR_S * 25 - 32
    assert max(encoder[warm:]) <= max(encoder[:warm]) < 200_000
    # the open segment's top-k posteriors (kept for word timings) vary with its length, which the 20 s
    # rule bounds; hypotheses vary a little: bounded, not growing
    assert max(carried[warm:]) <= 1.25 * max(carried[:warm])
    assert len(recognizer.result(stream).chunks) == 500
    assert len(stream.segments) >= HOUR_S / 21
    assert rss[-1] - rss[warm] < 40 * 2**20
    exits = {c.exit_layer for c in recognizer.result(stream).chunks}
    assert len(exits) >= 2  # chunks did stop early (RECOMPUTE kept pending chunks, COPY filled caches)


@pytest.mark.slow
def test_memory_stays_flat_with_beam_search_and_an_lm(tiny_pretrained, tokenizer_path) -> None:
    """An hour through beam search fused with an LM: hypotheses, LM scores and the LM's row cache
    stay bounded (a random tiny model keeps many tokens alive: the worst case for the beam)."""
    import asr_ee.decoding.lm as lm_module
    from asr_ee.data.tokenizer import Tokenizer

    tokenizer = Tokenizer(tokenizer_path)
    words = "the quick brown fox jumps over the lazy dog while rain falls on the old stone bridge".split()
    lm = lm_module.build_ngram([tokenizer.encode(" ".join(words[i:i + 6])) for i in range(len(words) - 5)],
                               tokenizer.vocab_size, order=3)
    config = StreamingConfig(chunk_frames=32, left_context_chunks=2, criterion=ExitCriterion("entropy", 0.963),
                             controller=None, max_trace_chunks=100, decoding="beam",
                             endpoint=EndpointConfig(rule3=EndpointRule(False, 0.0, 20.0)))
    recognizer = Recognizer(tiny_pretrained, config, lm=lm)
    stream = recognizer.create_stream()
    lm_scores: list[int] = []
    carried, rss = _stream_an_hour(recognizer, stream, lambda: lm_scores.append(len(stream.decoder._lm)))
    assert max(lm_scores) <= 64 * config.beam + config.beam
    warm = int(300 / PIECE_S)
    assert len(stream.segments) >= HOUR_S / 21
    assert max(carried[warm:]) <= 1.25 * max(carried[:warm])  # beams differ per segment; no growth
    assert len(lm._rows) <= lm_module.MAX_CACHED_ROWS
    assert rss[-1] - rss[warm] < 40 * 2**20
