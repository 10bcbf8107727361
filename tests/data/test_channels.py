"""Channel augmentation: each effect does what it says, draws are seeded, config is checked."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from asr_ee.config import ConfigError
from asr_ee.data.channels import ChannelAugment, ChannelConfig


def _speechlike(seconds: float = 1.0, rate: int = 16000) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(int(seconds * rate), generator=gen)
    envelope = 0.5 + 0.5 * torch.sin(torch.linspace(0, 20, noise.numel()))
    return (0.2 * noise * envelope)[None]


def _band_energy(x: torch.Tensor, low: float, high: float, rate: int = 16000) -> float:
    spec = torch.fft.rfft(x[0]).abs() ** 2
    freqs = torch.fft.rfftfreq(x.shape[-1], 1 / rate)
    return float(spec[(freqs >= low) & (freqs < high)].sum() / spec.sum())


def test_telephone_removes_the_high_band_and_keeps_the_length() -> None:
    x = _speechlike()
    y = ChannelAugment(ChannelConfig(telephone=1.0), random.Random(0))(x)
    assert y.shape == x.shape
    assert _band_energy(x, 4500, 8000) > 0.3
    assert _band_energy(y, 4500, 8000) < 0.01


def test_codec_and_clipping_change_audio_within_range() -> None:
    x = _speechlike()
    for cfg in (ChannelConfig(codec=1.0), ChannelConfig(clipping=1.0), ChannelConfig(band=1.0)):
        y = ChannelAugment(cfg, random.Random(1))(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        assert not torch.allclose(y, x, atol=1e-3)
    clipped = ChannelAugment(ChannelConfig(clipping=1.0), random.Random(2))(x)
    peak = float(x.abs().max())
    assert float(clipped.abs().max()) <= peak + 1e-6
    assert float((clipped.abs() > 0.98 * float(clipped.abs().max())).float().mean()) > 0.01  # flat tops


def test_draws_are_seeded_and_probability_zero_is_identity() -> None:
    x = _speechlike()
    cfg = ChannelConfig(band=0.5, telephone=0.3, codec=0.3, clipping=0.3, volume=0.5)
    a = [ChannelAugment(cfg, random.Random(7))(x) for _ in range(2)]
    assert torch.equal(a[0], a[1])
    assert torch.equal(ChannelAugment(ChannelConfig(), random.Random(0))(x), x)
    assert not ChannelConfig().any and cfg.any


def test_bad_probability_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="channels.codec"):
        ChannelConfig(codec=1.5)


def test_channels_need_on_the_fly_features() -> None:
    from asr_ee.data.datamodule import DataConfig

    with pytest.raises(ConfigError, match="on_the_fly_features"):
        DataConfig(channels=ChannelConfig(band=0.5))
    with pytest.raises(ConfigError, match="train_weights"):
        DataConfig(train_cuts=["a", "b"], train_weights=[1.0])
    assert np.isclose(sum(DataConfig(train_cuts=["a", "b"], train_weights=[1, 3]).train_weights), 4)
