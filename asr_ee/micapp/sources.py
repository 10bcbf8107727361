"""Where the app's audio comes from: a microphone (sounddevice) or a file paced like one.

Both put mono float32 blocks ``(N,)`` at their ``sample_rate`` on a queue and, once no more audio
will come, one :class:`InputEnded`. The microphone's PortAudio callback does nothing else (no
decoding, no printing), so capture never waits on the recognizer. Everything that can go wrong
with a sound device is turned into a :class:`DeviceError` whose message says what to do.

``sounddevice`` is passed in (``sd``) rather than imported here: :func:`import_sounddevice` gives
the real one with a clear error when PortAudio is missing, tests pass a fake module.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Protocol

import numpy as np

from asr_ee.audio import read_audio
from asr_ee.features import SAMPLE_RATE

__all__ = ["InputEnded", "DeviceError", "AudioSource", "FileSource", "MicrophoneSource", "import_sounddevice",
           "parse_device", "input_devices", "format_device_list", "choose_sample_rate", "open_input_stream",
           "BLOCK_S"]

BLOCK_S = 0.1  # seconds of audio per queued block (what a microphone callback typically delivers)


@dataclass(frozen=True)
class InputEnded:
    """Queued after the last block: the file ended, or capture was stopped."""


class DeviceError(RuntimeError):
    """A sound-device problem, with a message meant for the user."""


class AudioSource(Protocol):
    sample_rate: int
    live: bool            # a device that should keep delivering (a stall means trouble)
    description: str
    overflows: int        # blocks the device reported as overflowed (audio lost)
    last_audio_at: float | None  # clock reading when the last block arrived (live sources)

    def start(self, sink: "queue.Queue[Any]") -> None: ...
    def stop(self, *, abort: bool = False) -> None: ...
    def failure(self) -> str | None: ...


# ---------------------------------------------------------------------------------------- files
class FileSource:
    """An audio file fed in blocks of ``block_s`` at ``speed`` times real time, from a thread of its
    own: as from a microphone, a block is queued once its audio has been "spoken", when its last
    sample's time divided by ``speed`` has passed on ``clock`` (``sleep`` waits for it).

    Raises :class:`asr_ee.audio.AudioError` when the file cannot be read.
    """

    live = False
    overflows = 0
    last_audio_at = None

    def __init__(self, path: str | Path, *, speed: float = 1.0, block_s: float = BLOCK_S,
                 clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        if not speed > 0:
            raise ValueError(f"--speed must be positive, got {speed}")
        self.samples = read_audio(path)  # (N,) at 16 kHz
        self.sample_rate = SAMPLE_RATE
        self.description = f"{path} at {speed:g}x real time"
        self.speed, self.block_s, self.clock, self.sleep = speed, block_s, clock, sleep
        self.stop_requested = threading.Event()
        self.fed_all = threading.Event()  # set once the whole file (and InputEnded) is queued
        self._thread: threading.Thread | None = None

    def start(self, sink: "queue.Queue[Any]") -> None:
        self._thread = threading.Thread(target=self._feed, args=(sink,), name="mic-file-feeder", daemon=True)
        self._thread.start()

    def _feed(self, sink: "queue.Queue[Any]") -> None:
        block = max(1, round(self.block_s * self.sample_rate))
        start = self.clock()
        for offset in range(0, self.samples.size, block):
            piece = self.samples[offset:offset + block]
            wait = start + (offset + piece.size) / self.sample_rate / self.speed - self.clock()
            if wait > 0:
                self.sleep(wait)
            if self.stop_requested.is_set():
                break
            sink.put(piece.copy())
        else:
            self.fed_all.set()
        sink.put(InputEnded())

    def stop(self, *, abort: bool = False) -> None:
        self.stop_requested.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def failure(self) -> str | None:
        return None


# ---------------------------------------------------------------------------------------- devices
def import_sounddevice() -> ModuleType:
    """The sounddevice module, or a DeviceError saying what is missing."""
    try:
        import sounddevice
    except OSError as e:  # sounddevice raises OSError when the PortAudio library cannot be loaded
        raise DeviceError(f"PortAudio is not available ({e}). Install it (Debian/Ubuntu: "
                          "apt-get install libportaudio2), or use --input-file FILE") from e
    except ImportError as e:
        raise DeviceError(f"the sounddevice package is not installed ({e}): pip install sounddevice") from e
    return sounddevice


def parse_device(value: str | None) -> int | str | None:
    """``--device``: an index when it is a number, else a (part of a) name, as sounddevice takes it."""
    if value is None or value.strip() == "":
        return None
    return int(value) if value.strip().isdigit() else value


def input_devices(sd: ModuleType) -> list[tuple[int, dict[str, Any]]]:
    """(index, info) of every device with input channels."""
    try:
        devices = list(sd.query_devices())
    except sd.PortAudioError as e:
        raise DeviceError(f"cannot list the audio devices: {e}") from e
    return [(i, dict(d)) for i, d in enumerate(devices) if d.get("max_input_channels", 0) > 0]


def format_device_list(sd: ModuleType) -> list[str]:
    """Lines of ``--list-devices``."""
    inputs = input_devices(sd)
    if not inputs:
        return ["no audio input devices found (PortAudio lists none)"]
    try:
        default = int(sd.default.device[0])
    except (TypeError, ValueError, IndexError):
        default = -1
    lines = ["input devices (use --device INDEX or --device NAME):"]
    for index, info in inputs:
        mark = "  (default)" if index == default else ""
        lines.append(f"  {index:3d}  {info['name']}  {info['max_input_channels']} ch, "
                     f"{info.get('default_samplerate', 0):.0f} Hz{mark}")
    return lines


def _device_info(sd: ModuleType, device: int | str | None) -> dict[str, Any]:
    if not input_devices(sd):
        raise DeviceError("no audio input device found (PortAudio lists none): connect a microphone, "
                          "or use --input-file FILE")
    try:
        return dict(sd.query_devices(device, kind="input"))
    except (sd.PortAudioError, ValueError) as e:
        what = "no default input device" if device is None else f"no input device {device!r}"
        raise DeviceError(f"{what} ({e}); see --list-devices") from e


def choose_sample_rate(sd: ModuleType, device: int | str | None, info: dict[str, Any]) -> int:
    """16 kHz when the device takes it, else its default rate (the stream resamples)."""
    try:
        sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=SAMPLE_RATE)
        return SAMPLE_RATE
    except (sd.PortAudioError, ValueError):
        rate = int(info.get("default_samplerate") or 0)
        if rate <= 0:
            raise DeviceError(f"input device {info.get('name')!r} takes neither 16 kHz nor reports a rate") from None
        return rate


def open_input_stream(sd: ModuleType, device: int | str | None, sample_rate: int, block: int,
                      callback: Callable[..., None], finished: Callable[[], None]) -> Any:
    """A mono float32 ``sd.InputStream`` (not started), or DeviceError."""
    try:
        return sd.InputStream(device=device, channels=1, samplerate=sample_rate, dtype="float32", blocksize=block,
                              callback=callback, finished_callback=finished)
    except (sd.PortAudioError, ValueError) as e:
        name = "the default input device" if device is None else f"input device {device!r}"
        raise DeviceError(f"cannot open {name} at {sample_rate} Hz: {e}") from e


class MicrophoneSource:
    """A sounddevice input stream whose callback only queues audio and counts overflows.

    A device that goes away shows as PortAudio ending the stream on its own (``finished_callback``
    without :meth:`stop`); :meth:`failure` reports it. (A device that just stops delivering is
    caught by the session's stall timeout.)
    """

    live = True

    def __init__(self, sd: ModuleType, device: int | str | None = None, *, block_s: float = BLOCK_S,
                 clock: Callable[[], float]) -> None:
        self.sd, self.clock = sd, clock
        info = _device_info(sd, device)
        self.sample_rate = choose_sample_rate(sd, device, info)
        resampled = "" if self.sample_rate == SAMPLE_RATE else f", resampled to {SAMPLE_RATE // 1000} kHz"
        self.description = f"{info.get('name', device)!s} at {self.sample_rate} Hz{resampled}"
        self.overflows = 0
        self.last_audio_at: float | None = None
        self._sink: queue.Queue[Any] | None = None
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._stopped = False
        self._stream = open_input_stream(sd, device, self.sample_rate, max(1, round(block_s * self.sample_rate)),
                                         self._callback, self._ended.set)

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1  # PortAudio dropped input: the callback (or the machine) was too slow
        assert self._sink is not None
        self._sink.put(np.array(indata[:, 0], dtype=np.float32))
        self.last_audio_at = self.clock()

    def start(self, sink: "queue.Queue[Any]") -> None:
        self._sink = sink
        try:
            self._stream.start()
        except self.sd.PortAudioError as e:
            raise DeviceError(f"cannot start capturing from {self.description}: {e}") from e

    def stop(self, *, abort: bool = False) -> None:
        """Stop capturing (``abort``: drop what PortAudio still buffers, for a failing device) and
        queue :class:`InputEnded` after the last block. Safe to call twice, from any thread."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            (self._stream.abort if abort else self._stream.stop)()
            self._stream.close()
        except Exception:  # noqa: BLE001 - a vanished device may fail to stop; capture is over anyway
            pass
        if self._sink is not None:
            self._sink.put(InputEnded())

    def failure(self) -> str | None:
        if self._ended.is_set() and not self._stopped:
            return f"the input device ({self.description}) stopped the stream: disconnected?"
        return None
