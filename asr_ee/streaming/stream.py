"""One utterance or microphone session: audio in, features buffered, state carried between chunks.

A :class:`Stream` holds everything that belongs to one input (sherpa-onnx's ``OnlineStream``): the
resampler and fbank front end, the fbank frames not yet fed to the encoder, the encoder state, the
CTC decoder of the current segment, the finished segments, the controller state and the per-chunk
trace. The :class:`~asr_ee.streaming.recognizer.Recognizer` holds the model and settings and drives
streams; a stream never touches the model. Samples and features are numpy arrays (no torch): the
front end is the one the encoder's backend streams with (:mod:`asr_ee.streaming.frontend`).

Feeding rule (exact streaming, see ``EarlyExitEncoder.infer``): the first chunk takes
``4 * C + 3`` fbank frames, every later chunk ``4 * C``, the last one whatever is left once the
input is finished. Shapes: N samples, F = 80 mel bins, C chunk frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence, Union

import numpy as np

from asr_ee.audio import as_mono_float32
from asr_ee.decoding.align import TopKPosteriors
from asr_ee.decoding.ctc import BeamStreamDecoder, GreedyStreamDecoder
from asr_ee.features import SAMPLE_RATE, num_frames
from asr_ee.models.frames import ENCODER_FRAMES_PER_SECOND, MIN_INPUT_FRAMES, chunk_input_frames
from asr_ee.models.state import EncoderState
from asr_ee.streaming.config import StreamingConfig
from asr_ee.streaming.controller import ControllerState
from asr_ee.streaming.frontend import Fbank, empty_frames, make_fbank, tail_silence
from asr_ee.streaming.resample import StreamingResampler

__all__ = ["ChunkRecord", "Word", "Segment", "RecognitionResult", "Stream", "Samples"]

Samples = Union[np.ndarray, Sequence[float], Any]  # numpy, a CPU torch tensor, a list
Decoder = Union[GreedyStreamDecoder, BeamStreamDecoder]

_MS_PER_FRAME = 1000.0 / ENCODER_FRAMES_PER_SECOND


@dataclass
class ChunkRecord:
    """What happened to one chunk (the controller's and the criterion's decisions, and the cost).

    Attributes:
        exit_layer: layer number (1-based) of the exit whose posteriors were decoded.
        criterion_value: the criterion's value at that exit (None without a criterion).
        cap: layer number of the deepest exit the controller allowed.
        compute_ms: time spent on the chunk (encoder and decoding; the whole batch when batched).
        backlog_ms: audio received and not yet decoded, before the chunk.
        cpu_load: CPU load of other processes (0..1) the controller saw.
        frames: encoder frames in the chunk.
        compute_fraction: analytic encoder compute of the chunk relative to a full-depth chunk
            (catch-up work of ``recompute`` and cache fills of ``copy`` included; for a batch, the
            depth the batch ran to).
        audio_end_ms: end of the chunk's audio, from the stream's start.
        decoded_at_ms: the recognizer's clock when the chunk was decoded, from the stream's creation.
    """

    exit_layer: int
    criterion_value: float | None
    cap: int
    compute_ms: float
    backlog_ms: float
    cpu_load: float
    frames: int
    compute_fraction: float
    audio_end_ms: float
    decoded_at_ms: float

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass
class Word:
    """A recognized word: seconds from the stream's start, and the posterior probability of its
    least certain token (each token's highest over the frames aligned to it)."""

    text: str
    start_s: float
    end_s: float
    confidence: float


@dataclass
class Segment:
    """A finished segment (between two endpoints or resets), with its words."""

    text: str
    tokens: list[int]
    start_s: float
    end_s: float
    words: list[Word] = field(default_factory=list)


@dataclass
class RecognitionResult:
    """What :meth:`Recognizer.result` returns.

    Attributes:
        text: finished segments and the current partial text, space-joined.
        partial: text of the current (unfinished) segment.
        segments: finished segments, oldest first.
        tokens: token ids of the current segment.
        chunks: per-chunk trace (the last ``max_trace_chunks`` when bounded).
        is_final: the input is finished and every frame has been decoded.
        words: the finished segments' words, and the current segment's once ``is_final``.
    """

    text: str
    partial: str
    segments: list[Segment]
    tokens: list[int]
    chunks: list[ChunkRecord]
    is_final: bool
    words: list[Word] = field(default_factory=list)


@dataclass(eq=False)
class Stream:
    """Per-input state; create it with :meth:`Recognizer.create_stream` (compared by identity).

    Attributes:
        encoder_state: caches carried between chunks (bounded by ``left_context_chunks``).
        decoder: incremental CTC decoder of the current segment.
        controller_state: the load controller's memory (None without a controller).
        created_at: the recognizer's clock at creation (origin of ``ChunkRecord.decoded_at_ms``).
        segments: finished segments, oldest first.
        trace: per-chunk records (the last ``max_trace_chunks`` when bounded).
        chosen_exits: the exit criterion's own choices on the last ``hold_chunks`` chunks (what
            the next chunk's hold floor comes from).
        sample_rate: rate of the audio given to :meth:`accept_waveform` (fixed by the first call).
        samples_received: audio received so far, in 16 kHz samples.
        feats_fed: fbank frames handed to the encoder so far.
        segment_start_frame: encoder frame where the current segment began.
        finished: :meth:`input_finished` was called.
        posteriors: the current segment's decoded posteriors (top k a frame), for word timings.
        frontend: the fbank front end (:data:`asr_ee.streaming.frontend.FRONT_ENDS`).
    """

    config: StreamingConfig
    encoder_state: EncoderState
    decoder: Decoder
    controller_state: ControllerState | None
    created_at: float
    segments: list[Segment] = field(default_factory=list)
    trace: deque[ChunkRecord] = field(default_factory=deque)
    chosen_exits: deque[int] = field(default_factory=deque)
    sample_rate: int | None = None
    samples_received: int = 0          # at the model rate (after resampling)
    feats_fed: int = 0                 # fbank frames handed to the encoder
    segment_start_frame: int = 0
    finished: bool = False
    posteriors: TopKPosteriors = field(default_factory=TopKPosteriors)
    frontend: str = "lhotse"
    _fbank: Fbank | None = None
    _resampler: StreamingResampler | None = None
    _feats: np.ndarray = field(default_factory=empty_frames)  # (M, F)

    def __post_init__(self) -> None:
        self.trace = deque(self.trace, maxlen=self.config.max_trace_chunks)
        self.chosen_exits = deque(self.chosen_exits, maxlen=self.config.hold_chunks)
        if self._fbank is None:
            self._fbank = make_fbank(self.frontend)

    # ------------------------------------------------------------------ input
    def accept_waveform(self, sample_rate: int, samples: Samples) -> None:
        """Append audio (mono or (N, channels), any rate: resampled to 16 kHz on the fly).

        Raises ValueError for non-finite or integer samples, a change of sample rate within the
        stream, or audio after :meth:`input_finished`; then nothing of that call is accepted.
        """
        if self.finished:
            raise ValueError("accept_waveform after input_finished(); create a new stream")
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise ValueError(f"invalid sample rate {sample_rate!r}")
        if self.sample_rate is not None and sample_rate != self.sample_rate:
            raise ValueError(f"a stream's sample rate cannot change (was {self.sample_rate}, now {sample_rate})")
        x = as_mono_float32(samples)
        if self.sample_rate is None:
            self.sample_rate = int(sample_rate)
            if self.sample_rate != SAMPLE_RATE:
                self._resampler = StreamingResampler(self.sample_rate, SAMPLE_RATE)
        if self._resampler is not None:
            x = self._resampler.accept(x)
        self._push(x)

    def input_finished(self) -> None:
        """No more audio: flush the resampler, append ``config.tail_silence_ms`` of silence (quiet
        noise, :func:`asr_ee.features.tail_silence`: so the frames held back for the subsampling's
        right context and the last word's late CTC spikes are decoded) and the fbank's mirrored
        tail. The silence is not counted as received audio."""
        if self.finished:
            return
        if self._resampler is not None:
            self._push(self._resampler.finish())
        self.finished = True
        if num_frames(self.samples_received) < MIN_INPUT_FRAMES:
            # too short for one encoder frame (and for lhotse's mirrored padding): nothing to decode
            self._feats = self._feats[:0]
            return
        silence = tail_silence(self.frontend, self.config.tail_silence_ms)
        self._feats = np.concatenate([self._feats, self._fbank.accept(silence), self._fbank.finish()])

    def _push(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        self.samples_received += samples.size
        self._feats = np.concatenate([self._feats, self._fbank.accept(samples)])

    # ------------------------------------------------------------------ what the recognizer uses
    def next_feed_frames(self) -> int | None:
        """Fbank frames the next chunk takes, or None when no chunk is ready."""
        needed = chunk_input_frames(self.config.chunk_frames, first=self.feats_fed == 0)
        available = self._feats.shape[0]
        if available >= needed:
            return needed
        if self.finished and available > 0:
            return available
        return None

    def take_feats(self, count: int) -> np.ndarray:
        """Remove and return the next ``count`` fbank frames (count, F)."""
        feats, self._feats = self._feats[:count], self._feats[count:]
        self.feats_fed += count
        return feats

    @property
    def frames_done(self) -> int:
        return self.encoder_state.frames_done

    @property
    def backlog_ms(self) -> float:
        """Audio received that the encoder has not turned into output yet."""
        received_ms = 1000.0 * self.samples_received / SAMPLE_RATE
        return max(0.0, received_ms - self.frames_done * _MS_PER_FRAME)

    @property
    def done(self) -> bool:
        return self.finished and self._feats.shape[0] == 0

    def buffer_bytes(self) -> int:
        """Memory of the carried state: encoder caches, buffered features and samples, decoder
        hypotheses (outputs, the finished text and the trace, are not counted)."""
        total = self.encoder_state.memory_bytes() + self._feats.nbytes
        total += self.posteriors.nbytes()
        if self._resampler is not None:
            total += 4 * self._resampler.buffered_samples
        if isinstance(self.decoder, BeamStreamDecoder):
            total += 8 * sum(len(prefix) + 2 for prefix in self.decoder.beams)
        else:
            total += 8 * len(self.decoder.tokens)
        return total

    def segment_audio_s(self) -> tuple[float, float]:
        """Start and end (seconds from the stream's start) of the current segment: from where it
        began to its last non-blank frame (its trailing silence excluded), and never past the
        audio received (the appended tail silence is not audio)."""
        end_frame = self.frames_done - self.decoder.trailing_blank_frames if self.decoder.tokens else self.frames_done
        end_s = min(end_frame / ENCODER_FRAMES_PER_SECOND, self.samples_received / SAMPLE_RATE)
        start_s = self.segment_start_frame / ENCODER_FRAMES_PER_SECOND
        return start_s, max(start_s, end_s)
