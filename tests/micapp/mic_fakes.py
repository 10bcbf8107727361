"""Test doubles of the microphone app: a fake ``sounddevice`` module whose input stream plays a
prepared signal from its own thread (as PortAudio calls back from its own), with scripted overflow
statuses and a scripted ending, and a clock that moves only when told to."""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np


# Options of the runs whose transcript must equal the library's: no load controller. Under the fake
# clock a source feeds as fast as its thread runs, so how much audio waits for decoding (the backlog
# the controller reads, and so the exits it allows) depends on thread scheduling; the overfit
# model's last word, decoded over the silence appended at the end, can change with the exit.
# The controller has its own tests (tests/streaming/test_controller.py).
EXACT = ("--no-controller",)


class FakeClock:
    """Seconds that move only with :meth:`advance` or :meth:`sleep` (so compute times read 0)."""

    def __init__(self) -> None:
        self.now = 100.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


class PortAudioError(Exception):
    """Stands for ``sounddevice.PortAudioError``."""


@dataclass
class Flags:
    """Stands for ``sounddevice.CallbackFlags`` (true when a flag is set)."""

    input_overflow: bool = False

    def __bool__(self) -> bool:
        return self.input_overflow


@dataclass
class Script:
    """What the fake device does once started.

    Attributes:
        signal: (N,) float32 samples at the rate the stream is opened with, delivered in blocks.
        overflow_blocks: indexes of blocks delivered with ``input_overflow`` set.
        after: called with the stream once every block is delivered (e.g. vanish, press Ctrl-C);
            then the stream waits, like a quiet microphone, until stopped.
        start_error: ``start()`` raises PortAudioError with this message.
    """

    signal: np.ndarray
    overflow_blocks: set[int] = field(default_factory=set)
    after: Callable[["FakeInputStream"], None] | None = None
    start_error: str | None = None


class FakeInputStream:
    def __init__(self, sd: "FakeSoundDevice", **kwargs: Any) -> None:
        self.sd, self.kwargs = sd, kwargs
        self.callback, self.finished_callback = kwargs["callback"], kwargs["finished_callback"]
        self.blocksize = kwargs["blocksize"]
        self.stopped = threading.Event()
        self.delivered = 0  # samples handed to the callback
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.sd.script.start_error is not None:
            raise PortAudioError(self.sd.script.start_error)
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

    def _play(self) -> None:
        script = self.sd.script
        for k, offset in enumerate(range(0, script.signal.size, self.blocksize)):
            if self.stopped.is_set():
                return
            block = script.signal[offset:offset + self.blocksize].astype(np.float32)[:, None]  # (frames, 1)
            self.callback(block, block.shape[0], None, Flags(input_overflow=k in script.overflow_blocks))
            self.delivered += block.shape[0]
        if script.after is not None:
            script.after(self)

    def vanish(self) -> None:
        """What PortAudio does when the device goes away: the stream ends by itself."""
        self.stopped.set()
        self.finished_callback()

    def _end(self) -> None:
        self.stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.sd.calls.append("stop")
        self.finished_callback()

    def stop(self) -> None:
        self._end()

    def abort(self) -> None:
        self._end()

    def close(self) -> None:
        self.sd.calls.append("close")


class FakeSoundDevice:
    """A module-like stand-in for ``sounddevice`` with one input device.

    Args:
        script: what the opened stream plays.
        rates: sample rates the device accepts (the first is its default rate).
        devices: the device list (default: one 1-channel input device).
        open_error: ``InputStream`` raises PortAudioError with this message.
    """

    PortAudioError = PortAudioError

    def __init__(self, script: Script, rates: tuple[int, ...] = (16000,), devices: list[dict] | None = None,
                 open_error: str | None = None) -> None:
        self.script, self.rates, self.open_error = script, rates, open_error
        self.devices = devices if devices is not None else [
            {"name": "Fake USB Mic", "max_input_channels": 1, "max_output_channels": 0,
             "default_samplerate": float(rates[0])}]
        self.default = SimpleNamespace(device=[0 if self.devices else -1, -1])
        self.streams: list[FakeInputStream] = []
        self.calls: list[str] = []

    def query_devices(self, device: Any = None, kind: str | None = None) -> Any:
        if kind is None and device is None:
            return list(self.devices)
        index = self.default.device[0] if device is None else device
        if isinstance(index, str):
            matches = [i for i, d in enumerate(self.devices) if index.lower() in d["name"].lower()]
            if not matches:
                raise ValueError(f"No input device matching {index!r}")
            index = matches[0]
        if not 0 <= index < len(self.devices):
            raise PortAudioError(f"Error querying device {index}")
        return dict(self.devices[index])

    def check_input_settings(self, device: Any = None, channels: int | None = None, dtype: str | None = None,
                             samplerate: float | None = None) -> None:
        if samplerate not in self.rates:
            raise PortAudioError("Invalid sample rate [PaErrorCode -9997]")

    def InputStream(self, **kwargs: Any) -> FakeInputStream:  # noqa: N802 - sounddevice's name
        if self.open_error is not None:
            raise PortAudioError(self.open_error)
        stream = FakeInputStream(self, **kwargs)
        self.streams.append(stream)
        return stream


def mic_args(*argv: str) -> argparse.Namespace:
    """Parsed ``asr-ee mic`` options, through the real parser."""
    from asr_ee.cli import build_parser

    return build_parser().parse_args(["mic", *argv])


def begins_like(partial: str, text: str) -> bool:
    """Whether ``partial`` is the start of ``text`` but for its last word (which the audio may cut)."""
    words = partial.split()
    return words[:-1] == text.split()[:len(words) - 1]


def library_result(model_path: Any, signal: Any, rate: int = 16000, **settings: Any):
    """What the library's streaming path makes of ``signal`` (fed whole, then finished; no load
    controller) with StreamingConfig's defaults and ``settings``: the reference the app must
    match. It flushes the end of the input as the app does (``tail_silence_ms``), so the two are
    compared on the same audio; the tiny overfit model's memorized text is only its starting point
    (on the appended silence it may add to or change its last word)."""
    from asr_ee.pretrained import load_pretrained
    from asr_ee.streaming import Recognizer, StreamingConfig

    recognizer = Recognizer(load_pretrained(model_path), StreamingConfig(**{"controller": None, **settings}))
    stream = recognizer.create_stream()
    stream.accept_waveform(rate, signal)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    return recognizer.result(stream)
