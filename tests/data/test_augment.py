"""Vocal tract length perturbation of fbank features: formants move by the warp factor, the ends of
the axis stay, nothing else about the batch changes, and the draws follow the generator."""

from __future__ import annotations

import random

import pytest
import torch

from asr_ee.config import ConfigError, apply_overrides
from asr_ee.data.augment import FrequencyWarp, warp_bins
from asr_ee.data.datamodule import DataConfig, spec_augment


def test_warp_map_is_monotonic_and_keeps_the_ends() -> None:
    for alpha in (0.9, 0.95, 1.0, 1.05, 1.1):
        src = warp_bins(80, alpha)
        assert float(src[0]) == 0.0 and float(src[-1]) == pytest.approx(79.0)
        assert torch.all(src[1:] > src[:-1])
    torch.testing.assert_close(warp_bins(80, 1.0), torch.arange(80, dtype=torch.float32))


@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_a_formant_moves_by_the_warp_factor(alpha: float) -> None:
    """A peak at bin 30 (below the cut-off) ends up at bin 30 * alpha."""
    feats = torch.full((1, 5, 80), -10.0)
    feats[0, :, 30] = 5.0

    class Fixed(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return alpha

    out = FrequencyWarp(0.1, Fixed())(feats)
    assert out.shape == feats.shape
    peak = int(out[0, 0].argmax())
    assert abs(peak - 30 * alpha) <= 1, peak
    assert torch.equal(out[0, 0], out[0, 4])  # the same warp for every frame of an utterance
    assert float(out[0, 0, 0]) == -10.0 and float(out[0, 0, 79]) == -10.0


def test_each_utterance_draws_its_own_warp_from_the_generator() -> None:
    feats = torch.randn(3, 7, 80)
    a = FrequencyWarp(0.1, random.Random(5))(feats)
    b = FrequencyWarp(0.1, random.Random(5))(feats)
    c = FrequencyWarp(0.1, random.Random(6))(feats)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.allclose(a[0] - feats[0], a[1] - feats[1])  # utterances warped differently
    assert (a - feats).abs().mean() > 0.05


def test_out_of_range_warp_is_refused() -> None:
    with pytest.raises(ConfigError, match="freq_warp"):
        apply_overrides(DataConfig(), ["freq_warp=0.7"])
    with pytest.raises(ValueError, match="max_warp"):
        FrequencyWarp(0.0, random.Random(0))


def test_spec_augment_strength_scales_the_masks():
    """A stronger SpecAugment masks more: wider masks, a larger masked share; 1.0 is the recipes' default."""

    default, strong = spec_augment(1.0), spec_augment(1.6)
    assert (default.features_mask_size, default.frames_mask_size, default.max_frames_mask_fraction) == (15, 40, 0.15)
    assert (strong.features_mask_size, strong.frames_mask_size) == (24, 64)
    assert strong.max_frames_mask_fraction == pytest.approx(0.24)
    torch.manual_seed(0)
    feats = torch.randn(16, 400, 80)
    masked = {s: float((spec_augment(s)(feats.clone()) != feats).float().mean()) for s in (1.0, 2.0)}
    assert 0 < masked[1.0] < masked[2.0]
    with pytest.raises(ConfigError, match="spec_augment_strength"):
        DataConfig(spec_augment_strength=0)
