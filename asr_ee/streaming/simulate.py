"""Drive a recognizer over whole signals, as fast as possible or with real-time arrival.

Both modes hand the audio over in pieces of ``piece_s`` seconds (as a microphone would) and decode
whenever a chunk is ready, so the backlog the controller sees is what a live stream would have:

* fast (``realtime=False``): the next piece arrives as soon as the recognizer has nothing to do;
* real time (``realtime=True``): piece ``k`` arrives at ``(k + 1) * piece_s`` seconds after the
  start; when the recognizer is slower than real time the audio piles up (the backlog grows).

Several signals are decoded side by side (batched by :meth:`Recognizer.decode_streams`), each
one's segments closed at its endpoints. ``clock`` and ``sleep`` are injectable for tests.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from typing import Any

from asr_ee.streaming.recognizer import Recognizer
from asr_ee.streaming.stream import RecognitionResult, Stream

__all__ = ["run_streams", "run_stream"]


def _deliver(stream: Stream, signal: Any, sample_rate: int, start: int, end: int) -> int:
    if end > start:
        stream.accept_waveform(sample_rate, signal[start:end])
    if end >= len(signal):
        stream.input_finished()
    return end


def _decode_ready(recognizer: Recognizer, streams: list[Stream], reset_at_endpoints: bool, batch: bool) -> bool:
    if batch:
        decoded = recognizer.decode_streams(streams)
    else:
        decoded = sum(recognizer.decode_streams([s]) for s in streams)
    if decoded == 0:
        return False
    if reset_at_endpoints:
        for stream in streams:
            if recognizer.is_endpoint(stream):
                recognizer.reset(stream)
    return True


def run_streams(recognizer: Recognizer, signals: list[Any], *, sample_rate: int = 16000,
                realtime: bool = False, piece_s: float = 0.1, reset_at_endpoints: bool = True, batch: bool = True,
                clock: Callable[[], float] = time.perf_counter,
                sleep: Callable[[float], None] = time.sleep) -> list[RecognitionResult]:
    """Recognize ``signals`` (each (N,) at ``sample_rate``: numpy arrays or tensors); returns one
    result per signal.

    ``batch=False`` decodes the streams one by one (independent devices sharing a CPU) instead of
    stacking them into one ``infer`` call.
    """
    if piece_s <= 0:
        raise ValueError(f"piece_s must be positive, got {piece_s}")
    piece = max(1, round(piece_s * sample_rate))
    streams = [recognizer.create_stream() for _ in signals]
    fed = [0] * len(signals)
    start = clock()
    while not all(s.done for s in streams):
        if realtime:
            pieces_arrived = math.floor((clock() - start) / piece_s + 1e-9)
            for i, (stream, signal) in enumerate(zip(streams, signals)):
                if not stream.finished:
                    fed[i] = _deliver(stream, signal, sample_rate, fed[i], min(len(signal), pieces_arrived * piece))
        else:
            for i, (stream, signal) in enumerate(zip(streams, signals)):
                while not stream.finished and not recognizer.is_ready(stream):
                    fed[i] = _deliver(stream, signal, sample_rate, fed[i], min(len(signal), fed[i] + piece))
        if _decode_ready(recognizer, streams, reset_at_endpoints, batch) or not realtime:
            continue
        if all(s.finished for s in streams):
            break  # finished and nothing ready: the last frames made no chunk
        waited = clock() - start
        sleep(max(0.0, (math.floor(waited / piece_s + 1e-9) + 1) * piece_s - waited))
    for stream in streams:
        if reset_at_endpoints and stream.decoder.tokens:
            recognizer.reset(stream)
    return [recognizer.result(s) for s in streams]


def run_stream(recognizer: Recognizer, signal: Any, **kwargs) -> RecognitionResult:
    """:func:`run_streams` for one signal."""
    return run_streams(recognizer, [signal], **kwargs)[0]
