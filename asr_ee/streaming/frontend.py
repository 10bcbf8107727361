"""A stream's front end: fbank frames from 16 kHz samples, and the quiet noise appended at the end
of an input (:func:`asr_ee.features.tail_silence`), numpy in and out. Two front ends give the same
features (within 1e-3, tests/export/test_runtime_no_torch.py):

* ``lhotse``: :class:`asr_ee.features.StreamingFbank` (torch and lhotse: the features the models
  were trained on) and the torch-seeded tail noise; the torch encoder streams with it, so its
  results do not move.
* ``kaldi-native-fbank``: :class:`asr_ee.runtime.fbank.StreamingFbank` and numpy-seeded tail noise
  of the same level; imports no torch. The ONNX runtime streams with it, installed torch or not,
  so a runtime install and a full one give the same transcripts.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from asr_ee.features import NUM_MEL_BINS, TAIL_NOISE_RMS, tail_silence_samples

__all__ = ["FRONT_ENDS", "Fbank", "make_fbank", "tail_silence", "empty_frames"]

FRONT_ENDS = ("lhotse", "kaldi-native-fbank")
_TAIL_NOISE_SEED = 18


class Fbank(Protocol):
    """Incremental fbank of one stream: (N,) float32 samples in, (frames, F) float32 out."""

    def accept(self, samples: np.ndarray) -> np.ndarray: ...

    def finish(self) -> np.ndarray: ...


class _LhotseFbank:
    """:class:`asr_ee.features.StreamingFbank` (torch) behind numpy."""

    def __init__(self) -> None:
        import torch

        from asr_ee.features import StreamingFbank

        self._torch, self._fbank = torch, StreamingFbank()

    def accept(self, samples: np.ndarray) -> np.ndarray:
        return self._fbank.accept(self._torch.from_numpy(np.ascontiguousarray(samples, np.float32))).numpy()

    def finish(self) -> np.ndarray:
        return self._fbank.finish().numpy()


def _check(frontend: str) -> None:
    if frontend not in FRONT_ENDS:
        raise ValueError(f"unknown front end {frontend!r}; choose from {', '.join(FRONT_ENDS)}")


def make_fbank(frontend: str) -> Fbank:
    """A new stream's fbank extractor."""
    _check(frontend)
    if frontend == "lhotse":
        return _LhotseFbank()
    from asr_ee.runtime.fbank import StreamingFbank

    return StreamingFbank()


def tail_silence(frontend: str, tail_silence_ms: float) -> np.ndarray:
    """The silence appended at the end of an input, (N,) float32 at 16 kHz: the same samples every
    time for a front end (torch's generator for ``lhotse``, numpy's for ``kaldi-native-fbank``)."""
    _check(frontend)
    if frontend == "lhotse":
        from asr_ee.features import tail_silence as torch_tail_silence

        return torch_tail_silence(tail_silence_ms).numpy()
    rng = np.random.default_rng(_TAIL_NOISE_SEED)
    return (TAIL_NOISE_RMS * rng.standard_normal(tail_silence_samples(tail_silence_ms))).astype(np.float32)


def empty_frames() -> np.ndarray:
    """No fbank frames, (0, F)."""
    return np.zeros((0, NUM_MEL_BINS), np.float32)
