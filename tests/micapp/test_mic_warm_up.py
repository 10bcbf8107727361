"""The mic app warms its recognizer up (Recognizer.warm_up) before its source starts: the first
chunk's one-time costs must not reach the load controller as a backlog."""

from __future__ import annotations

import io

import pytest

from asr_ee.streaming import Recognizer
from mic_fakes import FakeClock, mic_args


def test_the_mic_app_warms_the_recognizer_up_before_its_source_starts(app, overfit_model,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    monkeypatch.setattr(Recognizer, "warm_up", lambda self, seconds=0.64: order.append("warm_up"))
    start = app.FileSource.start
    monkeypatch.setattr(app.FileSource, "start", lambda self, q: (order.append("source"), start(self, q))[1])
    clock = FakeClock()
    env = app.Environment(clock=clock, sleep=clock.sleep, cpu_load=lambda: 0.0, out=io.StringIO(), err=io.StringIO())
    assert app.run(mic_args("--input-file", str(overfit_model.wavs[0]), "--model", str(overfit_model.path)), env) == 0
    assert order == ["warm_up", "source"]
