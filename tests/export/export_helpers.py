"""Helpers of the export tests (a module of its own: every test folder has a ``conftest``, so
``from conftest import`` could find another folder's)."""

from __future__ import annotations

import math

import torch

from asr_ee.models import EarlyExitEncoder, build_encoder, preset

SENTENCES = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine",
             "early exits save compute on small devices", "speech recognition runs chunk by chunk"]
ARCHS = ["tiny", "tiny-splitformer"]


def seeded_encoder(arch: str, vocab_size: int = 32, seed: int = 0) -> EarlyExitEncoder:
    """A random tiny model with an exit after every layer (Splitformer branches at exits 1 and 4)
    and random BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    encoder = build_encoder(preset(arch, vocab_size=vocab_size, exit_layers=[1, 2, 3, 4])).eval()
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_(0.0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return encoder


def synthetic_speech(seconds: float, sample_rate: int = 16000, seed: int = 0) -> torch.Tensor:
    """Harmonic bursts with pauses and a little noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sample_rate), dtype=torch.float64) / sample_rate
    phase = 2 * math.pi * torch.cumsum(120 + 80 * torch.sin(2 * math.pi * 0.7 * t), 0) / sample_rate
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 6))
    envelope = (torch.sin(2 * math.pi * 1.3 * t) > -0.3).double()
    return (0.3 * voiced * envelope + 0.05 * torch.randn(t.numel(), generator=g, dtype=torch.float64)).float()
