"""Real-world channels applied to training audio on the fly (before the fbank is computed).

:class:`ChannelAugment` is a lhotse ``wave_transform`` (``OnTheFlyFeatures(wave_transforms=...)``):
per utterance it draws, each with its own probability from :class:`ChannelConfig`,

- ``band``: a random band limit and tilt: high-pass at 50-400 Hz, low-pass at 2.8-7.5 kHz, and a
  peaking EQ of +-10 dB at 300-4000 Hz (cheap microphones, laptop speakers, far rooms);
- ``telephone``: 300-3400 Hz, 8 kHz sampling and 8-bit mu-law (a narrowband call);
- ``codec``: MP3 at a low bitrate or GSM full rate (``pedalboard``'s encoders, in memory);
- ``clipping``: 3-15 dB of gain into hard or soft (tanh) clipping;
- ``volume``: a gain of -20 to +6 dB (quiet and loud recordings).

Noise, babble (other utterances mixed at low SNR) and simulated rooms are lhotse cut transforms
(:mod:`asr_ee.data.datamodule`). All draws come from one ``random.Random`` that the trainer
checkpoints, so a resumed run repeats them.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import torch
import torchaudio.functional as AF

from asr_ee.config import ConfigError
from asr_ee.features import SAMPLE_RATE

__all__ = ["ChannelConfig", "ChannelAugment", "describe"]


@dataclasses.dataclass
class ChannelConfig:
    """Probability of each channel effect per utterance (0 switches one off)."""

    band: float = 0.0
    telephone: float = 0.0
    codec: float = 0.0
    clipping: float = 0.0
    volume: float = 0.0

    def __post_init__(self) -> None:
        for name, p in dataclasses.asdict(self).items():
            if not 0 <= p <= 1:
                raise ConfigError(f"data.channels.{name} must be a probability in [0, 1], got {p}")

    @property
    def any(self) -> bool:
        return any(p > 0 for p in dataclasses.asdict(self).values())


def _band(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    x = AF.highpass_biquad(x, SAMPLE_RATE, rng.uniform(50.0, 400.0))
    x = AF.lowpass_biquad(x, SAMPLE_RATE, rng.uniform(2800.0, 7500.0))
    return AF.equalizer_biquad(x, SAMPLE_RATE, rng.uniform(300.0, 4000.0), rng.uniform(-10.0, 10.0), 0.8)


def _telephone(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    x = AF.highpass_biquad(AF.lowpass_biquad(x, SAMPLE_RATE, 3400.0), SAMPLE_RATE, 300.0)
    narrow = AF.resample(x, SAMPLE_RATE, 8000)
    peak = float(narrow.abs().max()) or 1.0
    narrow = AF.mu_law_decoding(AF.mu_law_encoding(narrow / peak, 256), 256) * peak
    return AF.resample(narrow, 8000, SAMPLE_RATE)[..., :x.shape[-1]]


def _codec(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    import pedalboard

    audio = x.numpy().astype(np.float32)
    if rng.random() < 0.5:
        out = pedalboard.MP3Compressor(vbr_quality=rng.uniform(5.0, 9.5))(audio, SAMPLE_RATE)
    else:
        out = pedalboard.GSMFullRateCompressor()(audio, SAMPLE_RATE)
    out = torch.from_numpy(np.ascontiguousarray(out[..., :x.shape[-1]]))
    if out.shape[-1] < x.shape[-1]:  # encoders may drop a few trailing samples
        out = torch.nn.functional.pad(out, (0, x.shape[-1] - out.shape[-1]))
    return out


def _clipping(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    peak = float(x.abs().max()) or 1.0
    gain = 10 ** (rng.uniform(3.0, 15.0) / 20) / peak
    y = x * gain
    y = torch.tanh(y) if rng.random() < 0.5 else y.clamp(-1.0, 1.0)
    return y * peak


def _volume(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    return x * 10 ** (rng.uniform(-20.0, 6.0) / 20)


_EFFECTS = (("band", _band), ("telephone", _telephone), ("codec", _codec), ("clipping", _clipping),
            ("volume", _volume))


class ChannelAugment:
    """Callable ``(C, T) or (T,) float tensor -> same shape``: a random channel per utterance."""

    def __init__(self, cfg: ChannelConfig, rng: random.Random) -> None:
        self.cfg = cfg
        self.rng = rng

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(audio, dtype=torch.float32)
        for name, effect in _EFFECTS:
            p = getattr(self.cfg, name)
            if p > 0 and self.rng.random() < p:
                x = effect(x, self.rng)
        if not bool(torch.isfinite(x).all()):
            return torch.as_tensor(audio, dtype=torch.float32)  # never feed NaN to the fbank
        return x

    def __repr__(self) -> str:
        return f"ChannelAugment({self.cfg})"


def describe(cfg: ChannelConfig) -> str:
    """``band 0.3, codec 0.15`` for logs."""
    return ", ".join(f"{k} {v:g}" for k, v in dataclasses.asdict(cfg).items() if v > 0) or "off"

