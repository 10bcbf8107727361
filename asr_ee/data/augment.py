"""Train-time feature augmentation beyond lhotse's: vocal tract length perturbation of fbank features.

A synthetic corpus has few voices, and a model trained on it learns those voices' formant
positions. VTLP (Jaitly & Hinton, 2013) warps each utterance's frequency axis by a random factor
near 1, which moves formants the way a longer or shorter vocal tract does: many more apparent
speakers for the price of an interpolation. Here the warp is applied to log-mel features along the
mel-bin axis, piecewise linear so the lowest and highest bins stay in place.
"""

from __future__ import annotations

import random

import torch

__all__ = ["FrequencyWarp", "warp_bins"]


def warp_bins(num_bins: int, alpha: float, boundary: float = 0.8) -> torch.Tensor:
    """Source position of each output bin under warp factor ``alpha`` (> 1 moves content up).

    Bins up to the cut-off ``boundary * (num_bins - 1) * min(alpha, 1)`` read from ``f / alpha``;
    above it, a straight line joins the cut-off to the top bin, so bin 0 and the top bin are fixed.

    Returns:
        (num_bins,) float positions in ``[0, num_bins - 1]``, increasing.
    """
    top = num_bins - 1
    f = torch.arange(num_bins, dtype=torch.float32)
    cut = boundary * top * min(alpha, 1.0)
    upper = cut / alpha + (f - cut) * (top - cut / alpha) / (top - cut)
    return torch.where(f <= cut, f / alpha, upper).clamp(0, top)


class FrequencyWarp(torch.nn.Module):
    """Warp each utterance's features along the frequency axis by ``alpha ~ U(1 - w, 1 + w)``.

    An input transform for lhotse's ``K2SpeechRecognitionDataset`` (called as
    ``transform(features, supervision_segments=...)``), drawing from ``rng`` so that a trainer that
    checkpoints the generator's state resumes with the same warps.

    Args:
        max_warp: ``w`` above; 0.1 spans the usual VTLP range 0.9-1.1.
        rng: the random generator for the warp factors.
        boundary: fraction of the axis below which the warp is a pure scaling.
    """

    def __init__(self, max_warp: float, rng: random.Random, boundary: float = 0.8) -> None:
        super().__init__()
        if not 0 < max_warp < 0.5:
            raise ValueError(f"max_warp must be in (0, 0.5), got {max_warp}")
        self.max_warp, self.rng, self.boundary = max_warp, rng, boundary

    def forward(self, features: torch.Tensor, supervision_segments=None, *args, **kwargs) -> torch.Tensor:
        """features: (B, T, F) -> (B, T, F), each utterance with its own warp."""
        out = torch.empty_like(features)
        num_bins = features.size(-1)
        for b in range(features.size(0)):
            alpha = self.rng.uniform(1 - self.max_warp, 1 + self.max_warp)
            src = warp_bins(num_bins, alpha, self.boundary).to(features.device)  # (F,)
            lo = src.floor().long().clamp(max=num_bins - 1)
            hi = (lo + 1).clamp(max=num_bins - 1)
            w = (src - lo).to(features.dtype)
            out[b] = features[b][:, lo] * (1 - w) + features[b][:, hi] * w
        return out
