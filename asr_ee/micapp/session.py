"""The decoding side of a session: takes the queued audio, runs the streaming recognizer, closes
segments at endpoints and tells the display; runs in its own thread so capture never waits.

Loop: move every queued block into the stream (so the load controller sees the whole backlog),
decode one chunk if one is ready, else wait briefly for audio. The input ends with the source's
:class:`~asr_ee.micapp.sources.InputEnded` (end of file, Ctrl-C, or a failing device, which the loop
stops itself); then the stream is finished and every remaining frame decoded, so all audio that
was captured is transcribed. A live source whose last block arrived more than ``stall_timeout_s``
of ``clock`` time ago counts as failed (a device gone without PortAudio noticing).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from asr_ee.micapp.display import ChunkTally, PlainDisplay, SessionSummary
from asr_ee.micapp.sources import AudioSource, DeviceError, InputEnded
from asr_ee.features import SAMPLE_RATE
from asr_ee.streaming import ChunkRecord, Recognizer, Segment

__all__ = ["Session", "WavRecorder", "OVERFLOW_NOTICE_EVERY_S"]

OVERFLOW_NOTICE_EVERY_S = 5.0  # at most one overflow notice per this many seconds


class WavRecorder:
    """Writes captured blocks to a 16-bit wav as they arrive (what was captured survives a crash)."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        import soundfile as sf

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = sf.SoundFile(str(path), mode="w", samplerate=sample_rate, channels=1, subtype="PCM_16")

    def write(self, block: np.ndarray) -> None:
        self._file.write(np.clip(block, -1.0, 1.0))

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class Session:
    """One recognition session over ``source``; :meth:`run` is the decoding thread's body.

    After :meth:`run`: ``segments`` holds every finished segment, ``error`` the reason the input
    failed (None when it ended normally), :meth:`summary` the session's numbers.
    """

    def __init__(self, recognizer: Recognizer, source: AudioSource, display: PlainDisplay, *,
                 recorder: WavRecorder | None = None, clock: Callable[[], float],
                 stall_timeout_s: float = 3.0, poll_s: float = 0.05) -> None:
        self.recognizer, self.source, self.display, self.recorder = recognizer, source, display, recorder
        self.clock, self.stall_timeout_s, self.poll_s = clock, stall_timeout_s, poll_s
        self.queue: queue.Queue[Any] = queue.Queue()
        self.stream = recognizer.create_stream()
        self.num_layers = recognizer.encoder.cfg.num_layers
        self.tally = ChunkTally()
        self.segments: list[Segment] = []
        self.error: str | None = None
        self.crash: BaseException | None = None
        self.input_ended = False
        self._last_record: ChunkRecord | None = None
        self._started_at = clock()
        self._overflows_noticed = 0
        self._overflow_notice_at: float | None = None

    # ------------------------------------------------------------------ the thread
    def start(self) -> threading.Thread:
        """Start the decoding thread, then the source (so no block is queued before a consumer).
        A source that cannot start ends the session at once, with ``error`` saying why."""
        self._started_at = self.clock()
        thread = threading.Thread(target=self.run, name="mic-decoder", daemon=True)
        thread.start()
        try:
            self.source.start(self.queue)
        except DeviceError as e:
            self.error = str(e)
            self.source.stop(abort=True)
            self.queue.put(InputEnded())
        return thread

    def run(self) -> None:
        try:
            while not self.input_ended:
                ready = self.recognizer.is_ready(self.stream)
                self._take_audio(wait=not ready)
                self._watch_source()
                if self.recognizer.is_ready(self.stream):
                    self._decode_chunk()
            self._finish()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread, never a silent death
            self.crash = e
            self.source.stop(abort=True)
            self._record_queued()
        finally:
            if self.recorder is not None:
                self.recorder.close()

    def _take_audio(self, wait: bool) -> None:
        try:
            item = self.queue.get(timeout=self.poll_s) if wait else self.queue.get_nowait()
        except queue.Empty:
            return
        while True:
            if isinstance(item, InputEnded):
                self.input_ended = True
                return
            self._accept(item)
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return

    def _record_queued(self) -> None:
        """After a crash: what is still queued goes to the recording (it is not transcribed)."""
        while self.recorder is not None:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, InputEnded):
                return
            self.recorder.write(item)

    def _accept(self, block: np.ndarray) -> None:
        if block.size == 0:
            return
        self.stream.accept_waveform(self.source.sample_rate, block)
        if self.recorder is not None:
            self.recorder.write(block)

    def _watch_source(self) -> None:
        """Overflow notices, and stopping a source that failed or stalled."""
        overflows = self.source.overflows
        if overflows > self._overflows_noticed:
            now = self.clock()
            if self._overflow_notice_at is None or now - self._overflow_notice_at >= OVERFLOW_NOTICE_EVERY_S:
                self.display.notice(f"asr-ee mic: input overflow, some audio was lost ({overflows} so far); "
                                    "the machine may be too busy")
                self._overflows_noticed, self._overflow_notice_at = overflows, now
        if self.error is not None or self.input_ended:
            return
        failure = self.source.failure()
        if failure is None and self.source.live:
            last = self.source.last_audio_at
            silent_s = self.clock() - (self._started_at if last is None else max(last, self._started_at))
            if silent_s > self.stall_timeout_s:
                failure = f"no audio from the input device for {silent_s:.1f} s: disconnected?"
        if failure is not None:
            self.error = failure
            self.source.stop(abort=True)  # queues InputEnded after whatever was captured

    # ------------------------------------------------------------------ decoding
    def _decode_chunk(self) -> None:
        recognizer, stream = self.recognizer, self.stream
        recognizer.decode(stream)
        record = stream.trace[-1] if stream.trace else None
        if record is not None and record is not self._last_record:  # a chunk of only padding adds none
            self._last_record = record
            self.tally.add(record)
            self.display.chunk(record, recognizer.result(stream).partial, self.source.overflows)
        if recognizer.is_endpoint(stream):
            self._close_segment()

    def _close_segment(self) -> None:
        before = len(self.stream.segments)
        self.recognizer.reset(self.stream)
        for segment in self.stream.segments[before:]:
            self.segments.append(segment)
            self.display.segment(segment)

    def _finish(self) -> None:
        self.stream.input_finished()
        while self.recognizer.is_ready(self.stream):
            self._decode_chunk()
        self._close_segment()

    # ------------------------------------------------------------------ results
    @property
    def transcript(self) -> str:
        return self.recognizer.result(self.stream).text

    def summary(self) -> SessionSummary:
        audio_s = self.stream.samples_received / SAMPLE_RATE
        return self.tally.summary(audio_s, self.num_layers, self.source.overflows)
