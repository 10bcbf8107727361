"""Streaming resampling to the model rate, equal to resampling the whole signal at once.

``torchaudio.functional.resample`` (what :func:`asr_ee.audio.to_model_rate` uses offline) reduces
the rates by their gcd to ``orig`` -> ``new`` and computes output block ``i`` (``new`` samples)
from input samples ``[i * orig - width, i * orig + width + orig)``, zero-padded at both ends. A
stream can therefore emit block ``i`` as soon as those samples have arrived; :meth:`finish`
pads the tail with zeros and trims to ``ceil(new * length / orig)`` samples as the offline call
does. Shapes: N samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchaudio.functional.functional import _get_sinc_resample_kernel

__all__ = ["StreamingResampler"]


class StreamingResampler:
    """Resample a signal that arrives in pieces; bounded memory (one filter span of input)."""

    def __init__(self, orig_freq: int, new_freq: int) -> None:
        if orig_freq <= 0 or new_freq <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_freq} -> {new_freq}")
        self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)
        gcd = math.gcd(self.orig_freq, self.new_freq)
        self._orig, self._new = self.orig_freq // gcd, self.new_freq // gcd
        self._kernel, self._width = _get_sinc_resample_kernel(self.orig_freq, self.new_freq, gcd,
                                                              dtype=torch.float32)
        self._buffer = torch.zeros(self._width)  # padded input from block ``_next_block``'s start
        self._samples_in = 0
        self._samples_out = 0

    @property
    def buffered_samples(self) -> int:
        return self._buffer.numel()

    def _emit(self, blocks: int) -> torch.Tensor:
        if blocks <= 0:
            return torch.zeros(0)
        span = (blocks - 1) * self._orig + self._kernel.size(-1)
        x = self._buffer[:span].view(1, 1, -1)
        out = F.conv1d(x, self._kernel, stride=self._orig)  # (1, new, blocks)
        self._buffer = self._buffer[blocks * self._orig:]
        return out[0].transpose(0, 1).reshape(-1)

    def accept(self, samples: torch.Tensor) -> torch.Tensor:
        """New input samples (N,) at ``orig_freq`` -> the output samples they complete."""
        samples = samples.to(torch.float32).flatten()
        self._samples_in += samples.numel()
        self._buffer = torch.cat([self._buffer, samples])
        blocks = (self._buffer.numel() - self._kernel.size(-1)) // self._orig + 1
        out = self._emit(blocks)
        self._samples_out += out.numel()
        return out

    def finish(self) -> torch.Tensor:
        """The remaining output once the input has ended."""
        total = math.ceil(self._new * self._samples_in / self._orig)
        remaining = total - self._samples_out
        if remaining <= 0:
            return torch.zeros(0)
        self._buffer = F.pad(self._buffer, (0, self._width + self._orig))
        blocks = (self._buffer.numel() - self._kernel.size(-1)) // self._orig + 1
        out = self._emit(blocks)[:remaining]
        self._samples_out += out.numel()
        return out
