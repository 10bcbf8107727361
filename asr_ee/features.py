"""Feature extraction settings shared by corpus preparation, training and streaming.

80-dim log-mel fbank from lhotse, 25 ms windows every 10 ms, with ``snip_edges=True``: frame ``i``
covers samples ``[160 i, 160 i + 400)`` and nothing else, so a stream can compute each frame as soon
as its 400 samples have arrived and get exactly what the offline extractor computes (lhotse's
default ``snip_edges=False`` reflects the signal around both ends, which a stream cannot know).
"""

from __future__ import annotations

from lhotse import Fbank, FbankConfig

__all__ = ["SAMPLE_RATE", "NUM_MEL_BINS", "FRAME_SHIFT_S", "FRAME_SHIFT_SAMPLES", "FRAME_LENGTH_SAMPLES",
           "fbank_config", "make_fbank", "num_frames"]

SAMPLE_RATE = 16000
NUM_MEL_BINS = 80
FRAME_SHIFT_S = 0.01
FRAME_SHIFT_SAMPLES = 160
FRAME_LENGTH_SAMPLES = 400


def fbank_config() -> FbankConfig:
    return FbankConfig(sampling_rate=SAMPLE_RATE, num_filters=NUM_MEL_BINS, frame_shift=FRAME_SHIFT_S,
                       frame_length=0.025, snip_edges=True, dither=0.0)


def make_fbank() -> Fbank:
    """The feature extractor every part of asr_ee uses."""
    return Fbank(fbank_config())


def num_frames(num_samples: int) -> int:
    """Number of fbank frames for ``num_samples`` samples (``snip_edges=True``)."""
    if num_samples < FRAME_LENGTH_SAMPLES:
        return 0
    return 1 + (num_samples - FRAME_LENGTH_SAMPLES) // FRAME_SHIFT_SAMPLES
