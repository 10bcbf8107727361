"""Endpoint rules (sherpa-onnx's three) on synthetic posteriors, and through the recognizer."""

from __future__ import annotations

import pytest
import torch

from asr_ee.decoding.ctc import GreedyStreamDecoder
from asr_ee.streaming import EndpointConfig, EndpointRule, Recognizer, StreamingConfig
from asr_ee.streaming.endpoint import MIN_SPLIT_PAUSE_FRAMES, detect_endpoint, split_pause_frames
from asr_ee.streaming.simulate import run_stream
from streaming_helpers import synthetic_speech

VOCAB = 8
FPS = 25  # encoder frames per second


def _posteriors(tokens: list[int]) -> torch.Tensor:
    """(T, V) log-posteriors whose best path is ``tokens`` (0 = blank)."""
    lp = torch.full((len(tokens), VOCAB), -10.0)
    lp[torch.arange(len(tokens)), torch.tensor(tokens, dtype=torch.long)] = -0.01
    return lp


def _endpoint(decoder: GreedyStreamDecoder, config: EndpointConfig | None = None) -> str | None:
    return detect_endpoint(config or EndpointConfig(), segment_frames=decoder.frames,
                           trailing_blank_frames=decoder.trailing_blank_frames, has_text=bool(decoder.tokens))


def _feed(frames: list[int]) -> GreedyStreamDecoder:
    decoder = GreedyStreamDecoder()
    decoder.accept(_posteriors(frames))
    return decoder


def test_rule1_long_silence_with_nothing_decoded() -> None:
    assert _endpoint(_feed([0] * 59)) is None          # 2.36 s of blank
    assert _endpoint(_feed([0] * 60)) == "rule1"       # 2.4 s


def test_rule2_shorter_silence_after_text() -> None:
    assert _endpoint(_feed([3, 3, 5] + [0] * 29)) is None   # 1.16 s after text
    assert _endpoint(_feed([3, 3, 5] + [0] * 30)) == "rule2"
    assert _endpoint(_feed([0] * 40 + [4] + [0] * 29)) is None  # the silence counts from the last token


def test_rule3_long_utterance_whatever_was_decoded() -> None:
    talking = [1 + (i % 3) for i in range(20 * FPS - 1)]
    assert _endpoint(_feed(talking)) is None
    assert _endpoint(_feed(talking + [2])) == "rule3"


def test_rule3_ends_long_speech_at_a_pause_before_the_limit() -> None:
    config = EndpointConfig()  # limit 20 s, pauses looked for from 16 s on
    talking = [1 + (i % 3) for i in range(int(14.8 * FPS))]
    assert _endpoint(_feed(talking + [0] * 20)) is None  # a 0.8 s pause before the window: speech goes on
    assert split_pause_frames(config, 16 * FPS) == 12 and split_pause_frames(config, 18 * FPS) == 6
    assert split_pause_frames(config, 15 * FPS) is None and split_pause_frames(config, 20 * FPS) is None
    at_17 = [1 + (i % 3) for i in range(17 * FPS)]
    assert _endpoint(_feed(at_17 + [0] * 8)) is None      # 17.32 s needs 8.04 frames of pause
    assert _endpoint(_feed(at_17 + [0] * 9)) == "rule3"   # 17.36 s needs 7.92
    near = [1 + (i % 3) for i in range(int(19.8 * FPS))]  # close to the limit a short pause will do
    assert split_pause_frames(config, len(near) + 4) == MIN_SPLIT_PAUSE_FRAMES == 4
    assert _endpoint(_feed(near + [0] * 3)) is None and _endpoint(_feed(near + [0] * 4)) == "rule3"
    # no text (noise the model read as blank), no split
    assert detect_endpoint(config, segment_frames=17 * FPS, trailing_blank_frames=20, has_text=False) is None
    no_split = EndpointConfig(split_window_s=0.0)
    assert _endpoint(_feed(at_17 + [0] * 20), no_split) is None
    assert _endpoint(_feed(talking + [1] * (20 * FPS - len(talking))), no_split) == "rule3"


def test_custom_rules_and_disabled_endpointing() -> None:
    quick = EndpointConfig(rule1=EndpointRule(False, 0.4, 0.0), rule2=EndpointRule(True, 0.2, 0.0),
                           rule3=EndpointRule(False, 0.0, 2.0))
    assert _endpoint(_feed([0] * 10), quick) == "rule1"
    assert _endpoint(_feed([2] + [0] * 5), quick) == "rule2"
    assert detect_endpoint(None, segment_frames=10_000, trailing_blank_frames=10_000, has_text=True) is None
    assert detect_endpoint(EndpointConfig(), segment_frames=0, trailing_blank_frames=0, has_text=False) is None


@pytest.fixture
def silent_model(tiny_pretrained):
    """The tiny model with every exit head forced to say blank."""
    with torch.no_grad():
        for head in tiny_pretrained.encoder.exits:
            head[1].bias[0] = 1e4
    return tiny_pretrained


def test_recognizer_reports_rule1_after_2_4_seconds_of_blank(silent_model) -> None:
    recognizer = Recognizer(silent_model, StreamingConfig(chunk_frames=4, criterion=None, controller=None))
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, synthetic_speech(4.0))
    frames_at_endpoint = None
    while recognizer.is_ready(stream) and frames_at_endpoint is None:
        recognizer.decode(stream)
        if recognizer.is_endpoint(stream):
            frames_at_endpoint = stream.frames_done
    assert frames_at_endpoint == 60  # the first 4-frame chunk boundary at >= 2.4 s
    recognizer.reset(stream)
    assert not recognizer.is_endpoint(stream) and recognizer.result(stream).segments == []


def test_endpoints_split_a_long_stream_into_segments(tiny_pretrained) -> None:
    short = EndpointConfig(rule3=EndpointRule(False, 0.0, 2.0))
    recognizer = Recognizer(tiny_pretrained, StreamingConfig(chunk_frames=4, criterion=None, controller=None,
                                                             endpoint=short))
    result = run_stream(recognizer, synthetic_speech(9.0, seed=1))
    assert len(result.segments) >= 4
    assert all(s.end_s - s.start_s <= 2.0 + 4 * 0.04 for s in result.segments)
    assert result.text == " ".join(s.text for s in result.segments)


def test_a_segment_ends_at_its_last_token_not_after_its_trailing_silence(silent_model) -> None:
    recognizer = Recognizer(silent_model, StreamingConfig(chunk_frames=4, criterion=None, controller=None,
                                                          endpoint=None, tail_silence_ms=400.0))
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, synthetic_speech(4.0))
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    frames = stream.frames_done
    assert frames > 4.0 * FPS  # 4 s of audio and the tail
    stream.decoder = _feed([0] * (frames - 50) + [3] + [0] * 49)  # a token, then 49 frames of silence
    assert stream.segment_audio_s() == (0.0, pytest.approx((frames - 49) / FPS))
    stream.decoder = _feed([0] * (frames - 1) + [3])  # speech to the end: the tail silence is not audio
    assert stream.segment_audio_s() == (0.0, pytest.approx(4.0))
