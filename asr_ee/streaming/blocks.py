"""Recognize a long input read in blocks (:class:`asr_ee.audio.AudioFile`) with memory that does not
grow with its length: the blocks are fed piece by piece as the recognizer asks for them (the fast
mode of :func:`asr_ee.streaming.simulate.run_streams`: offline audio, not a live backlog), segments
close at endpoints, and nothing of the input is kept once its chunk is decoded.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from asr_ee.audio import as_mono_float32
from asr_ee.streaming.recognizer import Recognizer
from asr_ee.streaming.stream import RecognitionResult

__all__ = ["run_blocks"]


def run_blocks(recognizer: Recognizer, blocks: Iterable[np.ndarray], *, sample_rate: int,
               piece_s: float = 0.1, reset_at_endpoints: bool = True) -> RecognitionResult:
    """The result of one stream fed ``blocks`` ((N,) float32 each, at ``sample_rate``) in pieces of
    ``piece_s`` seconds; equal to ``run_stream`` on the blocks joined (numpy; tensors are read as numpy)."""
    if piece_s <= 0:
        raise ValueError(f"piece_s must be positive, got {piece_s}")
    piece = max(1, round(piece_s * sample_rate))
    stream = recognizer.create_stream()
    pending = np.zeros(0, np.float32)
    source = iter(blocks)
    while True:
        while not recognizer.is_ready(stream) and not stream.finished:
            while pending.size < piece:
                block = next(source, None)
                if block is None:
                    break
                pending = np.concatenate([pending, as_mono_float32(block)])
            if pending.size == 0:
                stream.input_finished()
                break
            stream.accept_waveform(sample_rate, pending[:piece])
            pending = pending[piece:]
        if not recognizer.is_ready(stream):
            break
        recognizer.decode(stream)
        if reset_at_endpoints and recognizer.is_endpoint(stream):
            recognizer.reset(stream)
    if reset_at_endpoints and stream.decoder.tokens:
        recognizer.reset(stream)
    return recognizer.result(stream)
