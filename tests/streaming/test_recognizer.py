"""The streaming recognizer against the offline path, on a seeded tiny model and synthetic audio."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from asr_ee.audio import to_model_rate
from asr_ee.config import ConfigError
from asr_ee.decoding.ctc import greedy_decode, prefix_beam_search
from asr_ee.exits.criteria import ExitCriterion, ExitSelector
from asr_ee.models import SkipPolicy
from asr_ee.streaming import Recognizer, StreamingConfig
from asr_ee.streaming.resample import StreamingResampler
from asr_ee.streaming.simulate import run_stream, run_streams
from streaming_helpers import make_pretrained, offline_log_probs, synthetic_speech

CHUNK, LEFT = 4, 2


def _config(**overrides) -> StreamingConfig:
    base = dict(chunk_frames=CHUNK, left_context_chunks=LEFT, criterion=None, controller=None, endpoint=None,
                skip_policy=SkipPolicy.RECOMPUTE)
    base.update(overrides)
    return StreamingConfig(**base)


def _decode_all(recognizer: Recognizer, pieces: list[torch.Tensor], sample_rate: int = 16000):
    stream = recognizer.create_stream()
    for piece in pieces:
        stream.accept_waveform(sample_rate, piece)
        while recognizer.is_ready(stream):
            recognizer.decode(stream)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    return recognizer.result(stream)


def _random_pieces(x: torch.Tensor, seed: int, largest: int = 9000) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pieces, pos = [], 0
    while pos < x.numel():
        size = int(torch.randint(1, largest, (1,), generator=g))
        pieces.append(x[pos:pos + size])
        pos += size
    return pieces


@pytest.mark.parametrize("decoding", ["greedy", "beam"])
def test_full_depth_equals_offline_decoding_of_masked_forward(tiny_pretrained, decoding: str) -> None:
    audio = synthetic_speech(6.37)
    result = _decode_all(Recognizer(tiny_pretrained, _config(decoding=decoding, beam=3)), [audio])
    offline = offline_log_probs(tiny_pretrained, audio, CHUNK, LEFT)[-1]  # (T', V)
    expected = greedy_decode(offline) if decoding == "greedy" else prefix_beam_search(offline, beam=3)
    assert len(expected) > 10
    assert result.tokens == expected
    assert result.text == tiny_pretrained.tokenizer.decode(expected).strip()
    assert sum(c.frames for c in result.chunks) == offline.size(0)
    assert len(result.chunks) == math.ceil(offline.size(0) / CHUNK)
    assert {c.exit_layer for c in result.chunks} == {4} and result.is_final


def test_random_sized_pieces_give_the_same_result(tiny_pretrained) -> None:
    audio = synthetic_speech(5.0, seed=3)
    config = _config(criterion=ExitCriterion("entropy", 0.97), skip_policy=SkipPolicy.COPY)
    whole = _decode_all(Recognizer(tiny_pretrained, config), [audio])
    pieces = _decode_all(Recognizer(tiny_pretrained, config), _random_pieces(audio, seed=1))
    tiny = _decode_all(Recognizer(tiny_pretrained, config), _random_pieces(audio, seed=2, largest=50))
    assert whole.tokens and pieces.tokens == whole.tokens == tiny.tokens
    assert [c.exit_layer for c in pieces.chunks] == [c.exit_layer for c in whole.chunks]
    assert [c.criterion_value for c in tiny.chunks] == pytest.approx([c.criterion_value for c in whole.chunks])


@pytest.mark.parametrize("sample_rate", [8000, 44100])
def test_other_sample_rates_are_resampled_on_the_fly(tiny_pretrained, sample_rate: int) -> None:
    native = synthetic_speech(4.0, sample_rate=sample_rate, seed=5)
    recognizer = Recognizer(tiny_pretrained, _config())
    streamed = _decode_all(recognizer, _random_pieces(native, seed=4, largest=3000), sample_rate)
    offline = _decode_all(recognizer, [to_model_rate(native, sample_rate)])
    assert streamed.tokens and streamed.tokens == offline.tokens
    assert sum(c.frames for c in streamed.chunks) == sum(c.frames for c in offline.chunks)


def test_streaming_resampler_equals_whole_signal_resampling() -> None:
    import torchaudio

    x = torch.randn(22050 * 2 + 7, generator=torch.Generator().manual_seed(0))
    resampler = StreamingResampler(22050, 16000)
    out = np.concatenate([resampler.accept(p.numpy()) for p in _random_pieces(x, seed=0, largest=700)]
                         + [resampler.finish()])
    torch.testing.assert_close(torch.from_numpy(out), torchaudio.functional.resample(x, 22050, 16000), atol=1e-4,
                               rtol=0)
    assert resampler.buffered_samples < 200


def test_non_finite_and_integer_samples_are_rejected(tiny_pretrained) -> None:
    recognizer = Recognizer(tiny_pretrained, _config())
    stream = recognizer.create_stream()
    good = synthetic_speech(1.0)
    stream.accept_waveform(16000, good[:8000])
    for bad in (torch.tensor([0.1, float("nan")]), np.array([0.0, np.inf], dtype=np.float32)):
        with pytest.raises(ValueError, match="NaN or infinite"):
            stream.accept_waveform(16000, bad)
    with pytest.raises(ValueError, match="floating-point"):
        stream.accept_waveform(16000, np.array([1, 2, 3], dtype=np.int16))
    with pytest.raises(ValueError, match="sample rate cannot change"):
        stream.accept_waveform(8000, good[:10])
    assert stream.samples_received == 8000  # the rejected calls added nothing
    stream.accept_waveform(16000, good[8000:])
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    assert recognizer.result(stream).tokens == _decode_all(recognizer, [good]).tokens
    with pytest.raises(ValueError, match="after input_finished"):
        stream.accept_waveform(16000, good[:10])


@pytest.mark.parametrize("samples", [0, 100, 1000])
def test_stream_fed_nothing_or_almost_nothing_returns_an_empty_result(tiny_pretrained, samples: int) -> None:
    recognizer = Recognizer(tiny_pretrained, _config())
    stream = recognizer.create_stream()
    if samples:
        stream.accept_waveform(16000, synthetic_speech(1.0)[:samples])
    assert not recognizer.is_ready(stream)
    with pytest.raises(RuntimeError, match="not ready"):
        recognizer.decode(stream)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    result = recognizer.result(stream)
    assert result.text == "" and result.tokens == [] and result.segments == [] and result.chunks == []
    assert result.is_final and not recognizer.is_endpoint(stream)


def _expected_exits(pretrained, audio: torch.Tensor, criterion: ExitCriterion) -> list[int]:
    """The exit each chunk must take: the first whose offline posteriors the criterion accepts."""
    per_exit = offline_log_probs(pretrained, audio, CHUNK, LEFT)
    layers, expected = pretrained.encoder.cfg.exit_layers, []
    for start in range(0, per_exit[0].size(0), CHUNK):
        selector = ExitSelector(criterion)
        exit_index = next((b for b in range(len(per_exit) - 1)
                           if selector.decide(b, per_exit[b][start:start + CHUNK])), len(per_exit) - 1)
        expected.append(layers[exit_index])
    return expected


def _midpoint_threshold(pretrained, audio: torch.Tensor) -> float:
    """An entropy threshold between two chunks' first-exit values, far from every value."""
    first = offline_log_probs(pretrained, audio, CHUNK, LEFT)[0]
    selector = ExitSelector(ExitCriterion("entropy", 0.0))
    values = sorted(selector.criterion.value(first[s:s + CHUNK], []) for s in range(0, first.size(0), CHUNK))
    gaps = [(values[i + 1] - values[i], i) for i in range(len(values) // 4, 3 * len(values) // 4)]
    _, i = max(gaps)
    return (values[i] + values[i + 1]) / 2


def test_each_chunk_stops_at_the_first_exit_the_criterion_accepts(tiny_pretrained) -> None:
    audio = synthetic_speech(8.0, seed=7)
    criterion = ExitCriterion("entropy", _midpoint_threshold(tiny_pretrained, audio))
    recognizer = Recognizer(tiny_pretrained, _config(criterion=criterion))
    result = _decode_all(recognizer, [audio])
    exits = [c.exit_layer for c in result.chunks]
    assert exits == _expected_exits(tiny_pretrained, audio, criterion)
    assert len(set(exits)) >= 2
    for chunk in result.chunks:
        accepted = criterion.accepts(chunk.criterion_value)
        assert accepted or chunk.exit_layer == chunk.cap
        own_cost = recognizer.cost.exit_fractions[tiny_pretrained.encoder.cfg.exit_layers.index(chunk.exit_layer)]
        assert chunk.compute_fraction >= own_cost - 1e-9  # more when skipped blocks are caught up


@pytest.mark.parametrize("exit_index", [0, 2])
def test_fixed_criterion_gives_that_exit_on_every_chunk(tiny_pretrained, exit_index: int) -> None:
    result = _decode_all(Recognizer(tiny_pretrained, _config(criterion=ExitCriterion("fixed", exit_index),
                                                             skip_policy=SkipPolicy.COPY)),
                         [synthetic_speech(3.0)])
    layer = tiny_pretrained.encoder.cfg.exit_layers[exit_index]
    assert result.chunks and {c.exit_layer for c in result.chunks} == {layer}
    assert {c.criterion_value for c in result.chunks} == {float(exit_index)}
    cost = Recognizer(tiny_pretrained, _config()).cost
    skipped_layers = 4 - layer  # copy: each skipped layer fills its caches
    expected = cost.exit_fractions[exit_index] + skipped_layers * cost.fill_fraction_per_layer
    assert {round(c.compute_fraction, 9) for c in result.chunks} == {round(expected, 9)}
    assert expected < 1.0 and cost.fill_fraction_per_layer > 0


def test_batched_streams_decode_as_they_would_alone(tiny_pretrained, monkeypatch) -> None:
    audios = [synthetic_speech(4.0, seed=s) for s in (11, 12, 13)] + [synthetic_speech(2.5, seed=14)]
    criterion = ExitCriterion("entropy", _midpoint_threshold(tiny_pretrained, audios[0]))
    recognizer = Recognizer(tiny_pretrained, _config(criterion=criterion))
    alone = [_decode_all(recognizer, [a]) for a in audios]
    calls = []
    infer = tiny_pretrained.encoder.infer
    monkeypatch.setattr(tiny_pretrained.encoder, "infer", lambda feats, *a, **k: calls.append(feats.size(0))
                        or infer(feats, *a, **k))
    batched = run_streams(recognizer, audios, reset_at_endpoints=False)
    for one, many in zip(alone, batched):
        assert many.tokens == one.tokens
        assert [c.exit_layer for c in many.chunks] == [c.exit_layer for c in one.chunks]
    assert max(calls) >= 2 and len(calls) < sum(len(r.chunks) for r in alone)


def test_reset_starts_a_new_segment_and_keeps_the_finished_text(tiny_pretrained) -> None:
    recognizer = Recognizer(tiny_pretrained, _config())
    audio = synthetic_speech(6.0, seed=9)
    whole = _decode_all(recognizer, [audio])
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, audio[:48000])
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    first = recognizer.result(stream)
    recognizer.reset(stream)
    assert recognizer.result(stream).partial == "" and recognizer.result(stream).text == first.text
    stream.accept_waveform(16000, audio[48000:])
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    result = recognizer.result(stream)
    assert [s.text for s in result.segments] == [first.text] and first.text
    assert result.text == f"{first.text} {result.partial}".strip()
    assert result.segments[0].end_s == pytest.approx(len(first.chunks) * CHUNK * 0.04)
    assert len(result.chunks) == len(whole.chunks)  # the audio carried on: no chunk lost or repeated
    assert sum(c.frames for c in result.chunks) == sum(c.frames for c in whole.chunks)


def test_run_stream_returns_the_whole_text(tiny_pretrained) -> None:
    recognizer = Recognizer(tiny_pretrained, _config())
    audio = synthetic_speech(3.0, seed=2)
    assert run_stream(recognizer, audio, piece_s=0.37).text == _decode_all(recognizer, [audio]).text


def test_config_from_dict_is_strict() -> None:
    cfg = StreamingConfig.from_dict({"chunk_frames": 6, "criterion": {"kind": "confidence", "threshold": 0.9},
                                     "skip_policy": "recompute", "controller": None,
                                     "endpoint": {"rule2": {"must_contain_nonsilence": True,
                                                            "min_trailing_silence_s": 0.8,
                                                            "min_utterance_length_s": 0.0}}})
    assert cfg.criterion == ExitCriterion("confidence", 0.9) and cfg.skip_policy is SkipPolicy.RECOMPUTE
    assert cfg.controller is None and cfg.endpoint.rule2.min_trailing_silence_s == 0.8
    assert StreamingConfig.from_dict(cfg.to_dict()) == cfg
    for bad in ({"chunk_frame": 8}, {"skip_policy": "guess"}, {"left_context_chunks": 0},
                {"criterion": {"kind": "vibes", "threshold": 1.0}}, {"controller": {"target_rtf": "fast"}},
                {"decoding": "viterbi"}, {"hold_chunks": -1}, {"hold_chunks": 1.5}):
        with pytest.raises(ConfigError):
            StreamingConfig.from_dict(bad)


def test_splitformer_needs_even_chunks_and_streams_exactly(tokenizer_path) -> None:
    pretrained = make_pretrained(tokenizer_path, arch="tiny-splitformer", exit_layers=(2, 4))
    with pytest.raises(ConfigError, match="even"):
        Recognizer(pretrained, _config(chunk_frames=3))
    audio = synthetic_speech(4.0, seed=4)
    result = _decode_all(Recognizer(pretrained, _config()), [audio])
    assert result.tokens == greedy_decode(offline_log_probs(pretrained, audio, CHUNK, LEFT)[-1])


def test_a_file_read_in_blocks_gives_the_whole_file_result(tiny_pretrained, tmp_path) -> None:
    """AudioFile blocks fed by run_blocks = run_stream on the whole signal (16 kHz and 8 kHz files,
    stereo downmixed; endpoints on, so segments close on the way)."""
    import soundfile as sf

    from asr_ee.audio import AudioError, AudioFile
    from asr_ee.streaming.blocks import run_blocks
    from asr_ee.streaming.endpoint import EndpointConfig

    config = _config(endpoint=EndpointConfig(), decoding="beam", beam=3)
    for rate in (16000, 8000):
        mono = synthetic_speech(7.3, sample_rate=rate, seed=rate)
        path = tmp_path / f"long{rate}.flac"
        sf.write(path, torch.stack([mono, mono], dim=1).numpy(), rate)
        audio = AudioFile(path)
        assert audio.sample_rate == rate and audio.num_samples == mono.numel()
        joined = torch.from_numpy(np.concatenate(list(audio.blocks(seconds=0.37))))
        assert audio.samples_read == mono.numel()
        torch.testing.assert_close(joined, mono, atol=1e-4, rtol=0)  # FLAC is 16-bit
        recognizer = Recognizer(tiny_pretrained, config)
        whole = run_stream(recognizer, joined, sample_rate=rate)
        blocks = run_blocks(recognizer, audio.blocks(seconds=1.3), sample_rate=rate)
        assert blocks.text == whole.text and blocks.tokens == whole.tokens
        assert [s.tokens for s in blocks.segments] == [s.tokens for s in whole.segments]
    bad = tmp_path / "nan.wav"
    sf.write(bad, np.concatenate([np.zeros(32000), [np.nan], np.zeros(10)]).astype(np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN.*block at 2.0 s"):
        list(AudioFile(bad).blocks(seconds=1.0))
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        AudioFile(tmp_path / "empty.wav")


def test_a_file_only_ffmpeg_decodes_is_read_in_blocks(tmp_path) -> None:
    """AAC in MP4 (soundfile cannot read it): ffmpeg's 16 kHz output through a pipe, block by block."""
    import subprocess

    import soundfile as sf

    from asr_ee.audio import AudioError, AudioFile, load_audio

    wav = tmp_path / "x.wav"
    sf.write(wav, synthetic_speech(3.0, sample_rate=22050).numpy(), 22050)
    m4a = tmp_path / "x.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), str(m4a)], check=True)
    audio = AudioFile(m4a)
    assert audio.sample_rate == 16000 and audio.num_samples is None
    blocks = list(audio.blocks(seconds=0.5))
    assert len(blocks) > 5 and audio.samples_read == sum(b.size for b in blocks)
    torch.testing.assert_close(torch.from_numpy(np.concatenate(blocks)), load_audio(m4a))
    (tmp_path / "bad.m4a").write_bytes(b"not audio at all" * 100)
    with pytest.raises(AudioError, match="cannot decode audio"):
        list(AudioFile(tmp_path / "bad.m4a").blocks())
