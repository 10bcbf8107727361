"""Native English voices found on PyPI with their weights inside: Hibari and SVOX Pico.

* **Hibari** (``hibari-tts``, Apache-2.0): a 7.9 MB int8 ONNX model distilled from Kokoro-82M's
  ``af_heart`` voice (American English, female; Kokoro was trained on recorded speech), with its
  own English front end (lexicons and an out-of-vocabulary model, no espeak), 24 kHz, ~130x real
  time on one core. One speaker; ``speed`` changes the tempo and ``seed`` the noise component of
  its harmonic-plus-noise vocoder (the breathiness and fine detail of each rendition).
* **SVOX Pico** (``py-nanotts``, Apache-2.0): the classic Pico engine with its ``en-US`` and
  ``en-GB`` voices (both female), 16 kHz, ~100x real time; ``speed`` and ``pitch`` multipliers.
  Not neural, but two voices of another engine than espeak-ng, flite and festival.

Both are optional (the ``voices`` extra); a missing one is a clear error. Each setting is a frozen
dataclass with an ``id`` (the speaker name a manifest records), drawn from ranges by a seeded draw.
"""

from __future__ import annotations

import dataclasses
import functools
import random

import numpy as np

from asr_ee.config import ConfigError
from asr_ee.data.voices import MissingPythonPackageError

__all__ = ["HIBARI_SAMPLE_RATE", "PICO_SAMPLE_RATE", "PICO_VOICES", "HibariSettings", "HibariRanges",
           "draw_hibari_settings", "synthesize_hibari", "PicoSettings", "PicoRanges", "draw_pico_settings",
           "synthesize_pico"]

HIBARI_SAMPLE_RATE = 24000
PICO_SAMPLE_RATE = 16000
PICO_VOICES = ("en-US", "en-GB")
_PICO_VOLUME = 0.5  # Pico's default volume clips (peaks at full scale); the render rescales the peak anyway


@dataclasses.dataclass(frozen=True)
class HibariSettings:
    """One Hibari rendition: ``speed`` (> 1 faster) and ``seed`` (the vocoder's noise)."""

    speed: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.speed <= 2.0:
            raise ConfigError(f"Hibari speed must be in [0.5, 2], got {self.speed}")

    @property
    def id(self) -> str:
        return f"hibari-heart_s{self.speed:.2f}"


def _check_range(name: str, low_high: tuple[float, float]) -> None:
    low, high = low_high
    if not 0.5 <= low <= high <= 2.0:
        raise ConfigError(f"{name} range must satisfy 0.5 <= low <= high <= 2, got {low}, {high}")


@dataclasses.dataclass
class HibariRanges:
    speed: tuple[float, float] = (0.8, 1.25)

    def __post_init__(self) -> None:
        _check_range("Hibari speed", self.speed)


def draw_hibari_settings(ranges: HibariRanges, rng: random.Random) -> HibariSettings:
    return HibariSettings(round(rng.uniform(*ranges.speed), 3), rng.randrange(2**31))


@functools.lru_cache(maxsize=1)
def _hibari():
    try:
        from hibari import Hibari
    except ImportError as e:
        raise MissingPythonPackageError(
            "the Hibari voice needs pip install 'hibari-tts[fast]' (or pip install 'asr_ee[voices]')") from e
    return Hibari(threads=1)  # its default voice ships inside the package: no download


def synthesize_hibari(text: str, settings: HibariSettings) -> tuple[np.ndarray, int]:
    """Speak English ``text``: float32 mono audio and its sample rate (24 kHz)."""
    audio = _hibari()(text, speed=settings.speed, seed=settings.seed)
    return np.asarray(audio, dtype=np.float32).ravel(), HIBARI_SAMPLE_RATE


@dataclasses.dataclass(frozen=True)
class PicoSettings:
    """One Pico rendition: ``voice`` (``en-US`` or ``en-GB``), ``speed`` and ``pitch`` multipliers."""

    voice: str = "en-US"
    speed: float = 1.0
    pitch: float = 1.0

    def __post_init__(self) -> None:
        if self.voice not in PICO_VOICES:
            raise ConfigError(f"Pico voice must be one of {PICO_VOICES}, got {self.voice!r}")
        if not (0.5 <= self.speed <= 2.0 and 0.5 <= self.pitch <= 2.0):
            raise ConfigError(f"Pico speed and pitch must be in [0.5, 2], got {self.speed}, {self.pitch}")

    @property
    def id(self) -> str:
        return f"pico-{self.voice}_s{self.speed:.2f}_p{self.pitch:.2f}"


@dataclasses.dataclass
class PicoRanges:
    voices: tuple[str, ...] = PICO_VOICES
    speed: tuple[float, float] = (0.8, 1.2)
    pitch: tuple[float, float] = (0.85, 1.2)

    def __post_init__(self) -> None:
        self.voices = tuple(self.voices)
        if not self.voices or any(v not in PICO_VOICES for v in self.voices):
            raise ConfigError(f"Pico voices must be some of {PICO_VOICES}, got {list(self.voices)}")
        _check_range("Pico speed", self.speed)
        _check_range("Pico pitch", self.pitch)


def draw_pico_settings(ranges: PicoRanges, rng: random.Random) -> PicoSettings:
    return PicoSettings(rng.choice(list(ranges.voices)), round(rng.uniform(*ranges.speed), 3),
                        round(rng.uniform(*ranges.pitch), 3))


@functools.lru_cache(maxsize=1)
def _pico():
    try:
        from py_nanotts import NanoTTS
    except ImportError as e:
        raise MissingPythonPackageError(
            "the Pico voices need pip install py-nanotts (or pip install 'asr_ee[voices]')") from e
    return NanoTTS()


def synthesize_pico(text: str, settings: PicoSettings) -> tuple[np.ndarray, int]:
    """Speak English ``text``: float32 mono audio in [-1, 1] and its sample rate (16 kHz)."""
    pcm = _pico().speak(text, voice=settings.voice, speed=settings.speed, pitch=settings.pitch, volume=_PICO_VOLUME)
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0, PICO_SAMPLE_RATE
