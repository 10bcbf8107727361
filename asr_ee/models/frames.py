"""The encoder's time geometry (no torch): 10 ms fbank frames, 4x subsampled to 40 ms encoder frames
by two stride-2 convolutions without time padding, so encoder frame ``t`` sees fbank frames
``4t .. 4t+6``. Streams and the runtime without torch size their chunks from these.
"""

from __future__ import annotations

__all__ = ["RIGHT_CONTEXT", "STRIDE", "MIN_INPUT_FRAMES", "FIRST_CHUNK_EXTRA", "FBANK_FRAMES_PER_SECOND",
           "ENCODER_FRAMES_PER_SECOND", "chunk_input_frames"]

RIGHT_CONTEXT = 6  # input frames after 4t that output frame t needs
STRIDE = 4  # fbank frames per encoder frame
MIN_INPUT_FRAMES = RIGHT_CONTEXT + 1             # fbank frames the first encoder frame needs
FIRST_CHUNK_EXTRA = RIGHT_CONTEXT + 1 - STRIDE   # a stream's first chunk needs 4C + 3 frames
FBANK_FRAMES_PER_SECOND = 100.0  # 10 ms frame shift (asr_ee.features)
ENCODER_FRAMES_PER_SECOND = FBANK_FRAMES_PER_SECOND / STRIDE  # 25: 40 ms encoder frames


def chunk_input_frames(chunk_frames: int, *, first: bool) -> int:
    """Fbank frames a stream feeds for one chunk of ``chunk_frames`` encoder frames: ``4 C``, plus
    the right context the subsampling holds back for the stream's first chunk."""
    return STRIDE * chunk_frames + (FIRST_CHUNK_EXTRA if first else 0)
