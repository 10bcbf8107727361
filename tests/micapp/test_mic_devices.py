"""Sound-device trouble: the real path on this machine (PortAudio with no device), PortAudio or
sounddevice missing, and a fake sounddevice module for a device that cannot open or start,
vanishes or stalls mid-session, overflows, or only captures at 44.1 kHz. In every case: a clear
message, no traceback, and the audio captured so far transcribed (and saved with ``--save``)."""

from __future__ import annotations

import importlib.abc
import io
import sys
import threading

import numpy as np
import pytest
import soundfile as sf

from asr_ee.micapp.sources import DeviceError, open_input_stream
from asr_ee.audio import load_audio
from mic_fakes import EXACT, FakeClock, FakeSoundDevice, Script, begins_like, library_result, mic_args


def _has_input_device() -> bool:
    try:
        import sounddevice

        return any(d["max_input_channels"] > 0 for d in sounddevice.query_devices())
    except OSError:
        return False


needs_no_device = pytest.mark.skipif(_has_input_device(), reason="this machine has an audio input device")


def _run(app, argv: list[str], sd=None, clock: FakeClock | None = None, stop_after: bool = False):
    """Run the app on ``sd``; ``stop_after``: stop it (like Ctrl-C) once the device played its
    signal. A watchdog stops a session that would otherwise hang, so that the test fails instead."""
    out, err, clock = io.StringIO(), io.StringIO(), clock or FakeClock()
    stop = threading.Event()
    env = app.Environment(sounddevice=sd, clock=clock, sleep=clock.sleep, cpu_load=lambda: 0.5, out=out, err=err,
                          stop_event=stop)
    if stop_after:
        sd.script.after = lambda stream: stop.set()
    watchdog = threading.Timer(120.0, lambda: (err.write("WATCHDOG\n"), stop.set()))
    watchdog.start()
    try:
        status = app.run(mic_args(*argv), env)
    finally:
        watchdog.cancel()
    assert "WATCHDOG" not in err.getvalue()
    return status, out.getvalue(), err.getvalue()


def _transcript(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("transcript:")]
    assert len(lines) == 1, out
    return lines[0][len("transcript: "):]


# ---------------------------------------------------------------------------------------- the real path
@needs_no_device
def test_real_portaudio_without_a_device(app, tmp_path):
    status, out, err = _run(app, ["--model", str(tmp_path / "unused.pt")])
    assert status == 2 and out == ""
    assert err == ("asr-ee mic: no audio input device found (PortAudio lists none): connect a microphone, "
                   "or use --input-file FILE\n")
    status, out, err = _run(app, ["--list-devices"])
    assert (status, out, err) == (0, "no audio input devices found (PortAudio lists none)\n", "")


@needs_no_device
def test_real_input_stream_that_cannot_open_becomes_a_device_error():
    import sounddevice

    with pytest.raises(DeviceError, match=r"cannot open the default input device at 16000 Hz: .*device -1"):
        open_input_stream(sounddevice, None, 16000, 1600, lambda *a: None, lambda: None)


class _NoPortAudio(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


def test_portaudio_or_sounddevice_missing(app, monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    status, _, err = _run(app, ["--model", str(tmp_path / "unused.pt")])
    assert status == 2 and "PortAudio is not available (PortAudio library not found)" in err
    assert "apt-get install libportaudio2" in err and "--input-file" in err
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    status, _, err = _run(app, ["--list-devices"])
    assert status == 2 and "the sounddevice package is not installed" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------- fake devices
def test_listing_and_choosing_devices(app, tmp_path):
    sd = FakeSoundDevice(Script(np.zeros(0, np.float32)), devices=[
        {"name": "HDMI out", "max_input_channels": 0, "default_samplerate": 48000.0},
        {"name": "Fake USB Mic", "max_input_channels": 2, "default_samplerate": 44100.0}])
    sd.default.device = [1, 0]
    status, out, _ = _run(app, ["--list-devices"], sd)
    assert status == 0 and out.splitlines() == [
        "input devices (use --device INDEX or --device NAME):", "    1  Fake USB Mic  2 ch, 44100 Hz  (default)"]
    status, _, err = _run(app, ["--device", "7", "--model", str(tmp_path / "x.pt")], sd)
    assert status == 2 and "asr-ee mic: no input device 7 (Error querying device 7); see --list-devices" in err
    status, _, err = _run(app, ["--device", "webcam", "--model", str(tmp_path / "x.pt")], sd)
    assert status == 2 and "no input device 'webcam'" in err
    status, _, err = _run(app, ["--device", "usb", "--model", str(tmp_path / "x.pt")], sd)
    assert status == 2 and "does not exist" in err  # the device was found; the model was not
    assert sd.streams[-1].kwargs["device"] == "usb" and sd.calls[-2:] == ["stop", "close"]


def test_device_that_cannot_open_or_start(app, overfit_model):
    model = str(overfit_model.path)
    sd = FakeSoundDevice(Script(np.zeros(0, np.float32)), open_error="Device unavailable [PaErrorCode -9985]")
    status, out, err = _run(app, ["--model", model], sd)
    assert status == 2 and out == ""
    assert err == ("asr-ee mic: cannot open the default input device at 16000 Hz: "
                   "Device unavailable [PaErrorCode -9985]\n")
    sd = FakeSoundDevice(Script(np.zeros(0, np.float32), start_error="Unanticipated host error"))
    status, out, err = _run(app, ["--model", model], sd)
    assert status == 1 and _transcript(out) == ""
    assert "cannot start capturing from Fake USB Mic at 16000 Hz: Unanticipated host error" in err
    assert "Traceback" not in err


def _utterance(overfit_model, index: int, rate: int = 16000) -> tuple[np.ndarray, str]:
    samples = load_audio(overfit_model.wavs[index])
    if rate != 16000:
        import torchaudio

        samples = torchaudio.functional.resample(samples, 16000, rate)
    return samples.numpy(), overfit_model.texts[index]


def test_device_vanishing_mid_session_keeps_and_transcribes_what_was_captured(app, overfit_model, tmp_path):
    signal, text = _utterance(overfit_model, 0)
    sd = FakeSoundDevice(Script(signal, after=lambda stream: stream.vanish()))
    status, out, err = _run(app, ["--model", str(overfit_model.path), "--save", str(tmp_path), *EXACT], sd)
    assert status == 1
    expected = library_result(overfit_model.path, signal).text
    assert _transcript(out) == expected and begins_like(expected, text)
    assert "the input device (Fake USB Mic at 16000 Hz) stopped the stream: disconnected?" in err
    assert "the audio captured before that was transcribed and saved" in err and "Traceback" not in err
    wav = next(tmp_path.glob("mic-*.wav"))
    saved, rate = sf.read(wav, dtype="float32")
    assert rate == 16000 and saved.size == signal.size and np.abs(saved - signal).max() < 1e-4
    assert wav.with_suffix(".txt").read_text() == expected + "\n"


def test_device_going_silent_is_caught_by_the_stall_timeout(app, overfit_model):
    signal, text = _utterance(overfit_model, 1)
    clock = FakeClock()
    sd = FakeSoundDevice(Script(signal, after=lambda stream: clock.advance(10.0)))  # no audio for 10 s
    status, out, err = _run(app, ["--model", str(overfit_model.path), *EXACT], sd, clock=clock)
    expected = library_result(overfit_model.path, signal).text
    assert status == 1 and _transcript(out) == expected and begins_like(expected, text)
    assert "asr-ee mic: no audio from the input device for 10.0 s: disconnected?" in err
    assert sd.calls[-2:] == ["stop", "close"]


def test_capture_at_44_1_khz_is_resampled_and_overflows_are_counted(app, overfit_model):
    signal, text = _utterance(overfit_model, 2, rate=44100)
    sd = FakeSoundDevice(Script(signal, overflow_blocks={3, 7}), rates=(44100, 48000))
    status, out, err = _run(app, ["--model", str(overfit_model.path), *EXACT], sd, stop_after=True)
    assert status == 0
    assert sd.streams[0].kwargs["samplerate"] == 44100 and sd.streams[0].kwargs["channels"] == 1
    assert out.startswith("asr-ee mic: listening on Fake USB Mic at 44100 Hz, resampled to 16 kHz;")
    expected = library_result(overfit_model.path, signal, rate=44100).text
    assert _transcript(out) == expected and begins_like(expected, text)
    assert out.splitlines()[-1].endswith("| overflows 2")
    assert err.count("input overflow") == 1  # one notice, not one per overflow
    assert "input overflow, some audio was lost (" in err
