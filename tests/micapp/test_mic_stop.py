"""Stopping a session: Ctrl-C (a real KeyboardInterrupt in the main thread, and SIGINT to a running
``python apps/mic.py``) transcribes what was captured and prints the final transcript; ``--save``
keeps the audio and the transcript."""

from __future__ import annotations

import _thread
import io
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr_ee.audio import load_audio
from asr_ee.pretrained import load_pretrained
from asr_ee.streaming import Recognizer, StreamingConfig, run_stream
from mic_fakes import EXACT, FakeClock, FakeSoundDevice, Script, begins_like, library_result, mic_args

REPO = Path(__file__).resolve().parents[2]


def _environment(app, sd=None):
    out, err, clock = io.StringIO(), io.StringIO(), FakeClock()
    env = app.Environment(sounddevice=sd, clock=clock, sleep=clock.sleep, cpu_load=lambda: 0.0, out=out, err=err)
    return env, out, err


def test_ctrl_c_on_the_microphone_prints_the_transcript_and_saves_audio_and_text(app, overfit_model, tmp_path):
    signal_16k = load_audio(overfit_model.wavs[0]).numpy()
    expected = library_result(overfit_model.path, signal_16k)
    text = expected.text
    assert begins_like(text, overfit_model.texts[0])
    sd = FakeSoundDevice(Script(signal_16k, after=lambda stream: _thread.interrupt_main()))  # Ctrl-C
    env, out, err = _environment(app, sd)
    status = app.run(mic_args("--model", str(overfit_model.path), "--save", str(tmp_path / "sessions"), *EXACT), env)
    assert status == 0
    lines = out.getvalue().splitlines()
    assert lines[-2] == f"transcript: {text}" and lines[-1].startswith("summary: audio 2.86 s |")
    assert "asr-ee mic: stopping; transcribing what was captured" in err.getvalue()
    assert sd.calls[-2:] == ["stop", "close"]
    [wav] = (tmp_path / "sessions").glob("mic-*.wav")
    saved, rate = sf.read(wav, dtype="float32")
    assert rate == 16000 and saved.size == signal_16k.size and np.abs(saved - signal_16k).max() < 1e-4
    assert wav.with_suffix(".txt").read_text() == text + "\n"
    record = json.loads(wav.with_suffix(".json").read_text())
    assert record["transcript"] == text and record["stopped_by_user"] is True and record["error"] is None
    assert record["segments"][0]["text"] == text and record["summary"]["chunks"] == len(expected.chunks)
    assert f"saved {wav.name}, {wav.stem}.txt and {wav.stem}.json in {tmp_path / 'sessions'}" in err.getvalue()


def test_ctrl_c_during_a_file_transcribes_exactly_what_was_fed(app, overfit_model, tmp_path, file_sources):
    """The 12th pacing sleep (before the 12th block) presses Ctrl-C and waits until the app asked the
    file source to stop: 11 blocks (1.1 s) were fed, and those, no more and no less, are transcribed
    and saved."""
    env, out, err = _environment(app)
    sleeps = []

    def sleep(seconds: float) -> None:
        env.clock.advance(seconds)
        sleeps.append(seconds)
        if len(sleeps) == 12:
            _thread.interrupt_main()
            assert file_sources[0].stop_requested.wait(60)

    env.sleep = sleep
    wav = overfit_model.wavs[0]
    status = app.run(mic_args("--input-file", str(wav), "--model", str(overfit_model.path), "--save",
                              str(tmp_path), *EXACT), env)
    assert status == 0 and not file_sources[0].fed_all.is_set()
    fed = load_audio(wav)[:11 * 1600]
    expected = run_stream(Recognizer(load_pretrained(overfit_model.path), StreamingConfig(controller=None)), fed)
    text = overfit_model.texts[0]
    assert expected.text and begins_like(expected.text, text) and expected.text != text  # a real part of it
    assert out.getvalue().splitlines()[-2] == f"transcript: {expected.text}"
    [saved] = tmp_path.glob("mic-*.wav")
    assert sf.info(str(saved)).frames == 11 * 1600
    assert saved.with_suffix(".txt").read_text() == "".join(s.text + "\n" for s in expected.segments)


def test_sigint_to_a_running_app_stops_it_cleanly(overfit_model, tmp_path):
    wav = overfit_model.wavs[0]
    proc = subprocess.Popen([sys.executable, str(REPO / "apps" / "mic.py"), "--input-file", str(wav), "--model",
                             str(overfit_model.path), "--speed", "0.5", "--save", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_chunk = threading.Event()
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("["):
                first_chunk.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert first_chunk.wait(240), proc.stderr.read() if proc.poll() is not None else "no chunk line"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0
    finally:
        proc.kill()
    reader.join(10)
    stderr = proc.stderr.read()
    assert "stopping; transcribing what was captured" in stderr and "Traceback" not in stderr
    transcript = [line for line in lines if line.startswith("transcript: ")]
    assert len(transcript) == 1 and begins_like(transcript[0][len("transcript: "):], overfit_model.texts[0])
    [saved] = tmp_path.glob("mic-*.wav")
    assert 0 < sf.info(str(saved)).duration < sf.info(str(wav)).duration  # stopped before the end, audio kept

