"""Recognizer.warm_up: a throwaway stream of silence through every exit and the decoder, so that a
live source's first chunk does not carry the one-time costs the load controller would read as a
backlog; it leaves nothing behind (tests/micapp/test_mic_warm_up.py: the mic app calls it before
its source starts)."""

from __future__ import annotations

import pytest

from asr_ee.exits.criteria import ExitCriterion
from asr_ee.streaming import Recognizer, StreamingConfig
from asr_ee.streaming.simulate import run_stream
from streaming_helpers import synthetic_speech


def test_warm_up_runs_every_exit_and_leaves_no_trace(tiny_pretrained, monkeypatch: pytest.MonkeyPatch) -> None:
    config = StreamingConfig(chunk_frames=4, criterion=ExitCriterion("entropy", 10.0), controller=None)
    audio = synthetic_speech(2.0, seed=3)
    before = run_stream(Recognizer(tiny_pretrained, config), audio).text
    rec = Recognizer(tiny_pretrained, config)
    calls = []
    infer = rec.encoder.infer

    def spy(*args, **kwargs):
        out = infer(*args, **kwargs)
        calls.append((kwargs["decide"], out.exit_index))
        return out

    monkeypatch.setattr(rec.encoder, "infer", spy)
    rec.warm_up()
    # the criterion would stop every chunk at the first exit (any entropy is <= 10): warm-up goes to the top
    assert calls and all(decide is None and exit_index == rec.top for decide, exit_index in calls)
    monkeypatch.setattr(rec.encoder, "infer", infer)
    assert run_stream(rec, audio).text == before
