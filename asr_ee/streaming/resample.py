"""Resampling to the model rate, streaming or offline, in numpy (no torch): torchaudio's
``functional.resample`` (its default windowed-sinc filter: Hann window, 6 zero crossings, rolloff
0.99) recomputed here, so the runtime without torch resamples as the torch path always did
(within 1e-5, tests/streaming/test_resample.py).

The rates are reduced by their gcd to ``orig`` -> ``new``; output block ``i`` (``new`` samples)
is computed from input samples ``[i * orig - width, i * orig + width + orig)``, zero-padded at both
ends. A stream can therefore emit block ``i`` as soon as those samples have arrived; :meth:`finish`
pads the tail with zeros and trims to ``ceil(new * length / orig)`` samples as the offline call
does, so streaming equals :func:`resample` on the whole signal. Shapes: N samples.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["StreamingResampler", "resample", "sinc_resample_kernel"]

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99


def sinc_resample_kernel(orig_freq: int, new_freq: int) -> tuple[np.ndarray, int]:
    """The filter bank (new, 2 * width + orig) float32 of the gcd-reduced rates, and ``width``
    (torchaudio's ``_get_sinc_resample_kernel`` with its defaults)."""
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    base_freq = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base_freq)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    t = (np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + idx) * base_freq
    t = np.clip(t, -LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = np.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kernels = np.where(t == 0, 1.0, np.sin(t) / t)
    return (kernels * window * (base_freq / orig)).astype(np.float32), width


class StreamingResampler:
    """Resample a signal that arrives in pieces; bounded memory (one filter span of input)."""

    def __init__(self, orig_freq: int, new_freq: int) -> None:
        if orig_freq <= 0 or new_freq <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_freq} -> {new_freq}")
        self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)
        gcd = math.gcd(self.orig_freq, self.new_freq)
        self._orig, self._new = self.orig_freq // gcd, self.new_freq // gcd
        self._kernel, self._width = sinc_resample_kernel(self.orig_freq, self.new_freq)  # (new, K)
        self._buffer = np.zeros(self._width, np.float32)  # padded input from the next block's start
        self._samples_in = 0
        self._samples_out = 0

    @property
    def buffered_samples(self) -> int:
        return int(self._buffer.size)

    def _emit(self, blocks: int) -> np.ndarray:
        if blocks <= 0:
            return np.zeros(0, np.float32)
        size = self._kernel.shape[1]
        span = self._buffer[:(blocks - 1) * self._orig + size]
        windows = np.lib.stride_tricks.sliding_window_view(span, size)[::self._orig]  # (blocks, K)
        out = windows @ self._kernel.T                                               # (blocks, new)
        self._buffer = self._buffer[blocks * self._orig:]
        return out.reshape(-1).astype(np.float32)

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """New input samples (N,) at ``orig_freq`` -> the output samples they complete."""
        samples = np.asarray(samples, np.float32).ravel()
        self._samples_in += samples.size
        self._buffer = np.concatenate([self._buffer, samples])
        blocks = (self._buffer.size - self._kernel.shape[1]) // self._orig + 1
        out = self._emit(blocks)
        self._samples_out += out.size
        return out

    def finish(self) -> np.ndarray:
        """The remaining output once the input has ended."""
        total = math.ceil(self._new * self._samples_in / self._orig)
        remaining = total - self._samples_out
        if remaining <= 0:
            return np.zeros(0, np.float32)
        self._buffer = np.concatenate([self._buffer, np.zeros(self._width + self._orig, np.float32)])
        blocks = (self._buffer.size - self._kernel.shape[1]) // self._orig + 1
        out = self._emit(blocks)[:remaining]
        self._samples_out += out.size
        return out


def resample(samples: np.ndarray, orig_freq: int, new_freq: int) -> np.ndarray:
    """A whole (N,) signal resampled (as ``torchaudio.functional.resample`` with its defaults)."""
    if orig_freq == new_freq:
        return np.asarray(samples, np.float32)
    resampler = StreamingResampler(orig_freq, new_freq)
    return np.concatenate([resampler.accept(samples), resampler.finish()])
