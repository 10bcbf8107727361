"""The Python API: what ``asr-ee transcribe`` does, in three lines::

    from asr_ee import Recognizer
    rec = Recognizer.from_pretrained()            # the shipped model with its shipped defaults
    result = rec.transcribe("a.wav")              # or a 1-D numpy array / tensor with sample_rate=
    print(result.text, [(w.text, w.start_s, w.end_s, w.confidence) for w in result.words])

:class:`Recognizer` is the streaming recognizer (:class:`asr_ee.streaming.Recognizer`: streams
with ``create_stream``/``accept_waveform``/``decode``/``result`` work as before) built by the same
factory as the command line (:func:`asr_ee.streaming.factory.build_recognizer`), with
:meth:`~Recognizer.transcribe` for whole inputs. With an exported folder (or the shipped model's
export, the default when onnxruntime is installed) nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from asr_ee.audio import as_mono_float32, read_audio
from asr_ee.features import SAMPLE_RATE
from asr_ee.pretrained import Pretrained
from asr_ee.streaming import recognizer as streaming_recognizer
from asr_ee.streaming.factory import build_recognizer
from asr_ee.streaming.simulate import run_stream
from asr_ee.streaming.stream import ChunkRecord, RecognitionResult, Segment, Word

__all__ = ["Recognizer", "Transcript", "Word", "Segment"]


@dataclass
class Transcript:
    """A whole input recognized.

    Attributes:
        text: the segments' text, space-joined.
        segments: the segments (between endpoints), each with its text, times and words.
        words: every word with its start and end (seconds from the input's start) and confidence.
        chunks: per-chunk trace (exit layer, cap, compute, ...).
        duration_s: the input's length.
    """

    text: str
    segments: list[Segment]
    words: list[Word]
    chunks: list[ChunkRecord] = field(default_factory=list)
    duration_s: float = 0.0

    @classmethod
    def from_result(cls, result: RecognitionResult, duration_s: float) -> "Transcript":
        """The result of a finished stream over ``duration_s`` seconds of input; word and segment
        times are kept within the input (the silence appended at its end is not part of it)."""
        def clamp(t: float) -> float:
            return min(max(t, 0.0), duration_s)

        words = {id(w): dataclasses.replace(w, start_s=clamp(w.start_s), end_s=clamp(w.end_s)) for w in result.words}
        for segment in result.segments:
            words.update({id(w): dataclasses.replace(w, start_s=clamp(w.start_s), end_s=clamp(w.end_s))
                          for w in segment.words if id(w) not in words})
        segments = [dataclasses.replace(s, start_s=clamp(s.start_s), end_s=clamp(s.end_s),
                                        words=[words[id(w)] for w in s.words]) for s in result.segments]
        return cls(result.text, segments, [words[id(w)] for w in result.words], result.chunks, duration_s)

    def to_dict(self, chunk_fields: tuple[str, ...] = ()) -> dict[str, Any]:
        """JSON-ready: text, segments and words (times to the millisecond), and the chosen chunk fields."""
        def word(w: Word) -> dict[str, Any]:
            return {"text": w.text, "start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3),
                    "confidence": round(w.confidence, 4)}

        record: dict[str, Any] = {
            "text": self.text,
            "segments": [{"text": s.text, "start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3),
                          "words": [word(w) for w in s.words]} for s in self.segments],
            "words": [word(w) for w in self.words],
        }
        if chunk_fields:
            record["chunks"] = [{k: _rounded(getattr(c, k)) for k in chunk_fields} for c in self.chunks]
        return record


def _rounded(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


class Recognizer(streaming_recognizer.Recognizer):
    """The streaming recognizer with a factory for the shipped (or any) model and whole-input
    transcription. See :func:`asr_ee.streaming.factory.build_recognizer` for the arguments."""

    @classmethod
    def from_pretrained(cls, model: str | Path | Pretrained | None = None, *,
                        settings: Mapping[str, Any] | None = None, criterion: str | None = None,
                        threshold: float | None = None, lm: str | Path | bool | None = None,
                        threads: int | None = None, clock: Callable[[], float] | None = None,
                        cpu_load: Callable[[], float] | None = None, backend: str | None = None) -> "Recognizer":
        """What ``asr-ee transcribe --model MODEL`` runs: the model (None: the shipped one; a model
        file runs in torch, a folder written by ``asr-ee export`` on onnxruntime; ``backend``
        chooses for the shipped model) with the defaults it carries (exit ceiling, criterion,
        language model), overridden by the arguments (``settings``: StreamingConfig keys;
        ``lm=False``: no language model)."""
        recognizer = build_recognizer(model, settings=settings, criterion=criterion, threshold=threshold, lm=lm,
                                      threads=threads, recognizer_class=cls, clock=clock, cpu_load=cpu_load,
                                      backend=backend)
        assert isinstance(recognizer, cls)
        return recognizer

    def transcribe(self, audio: str | Path | np.ndarray | Any, *, sample_rate: int | None = None,
                   realtime: bool = False) -> Transcript:
        """Recognize a whole input: an audio file, or samples ((N,) or (N, channels) floats in
        [-1, 1], numpy or a tensor) at ``sample_rate``.

        The input is fed as offline audio, piece by piece as the recognizer asks for it (not as a
        live backlog: the load controller weighs compute time against the audio fed), unless
        ``realtime`` simulates live arrival. A file is read block by block
        (:class:`asr_ee.audio.AudioFile`), so a long file does not have to fit in memory.
        """
        if isinstance(audio, (str, Path)):
            if sample_rate is not None:
                raise ValueError("sample_rate goes with samples; a file says its own rate")
            if not realtime:  # read block by block: memory does not grow with the file's length
                from asr_ee.audio import AudioFile
                from asr_ee.streaming.blocks import run_blocks

                source = AudioFile(audio)
                result = run_blocks(self, source.blocks(), sample_rate=source.sample_rate)
                return Transcript.from_result(result, source.samples_read / source.sample_rate)
            samples, sample_rate = read_audio(audio), SAMPLE_RATE
        else:
            if sample_rate is None:
                raise ValueError("transcribe(samples) needs sample_rate=")
            samples = as_mono_float32(audio)  # AudioError (a ValueError) for integer or non-finite samples
        result = run_stream(self, samples, sample_rate=int(sample_rate), realtime=realtime)
        return Transcript.from_result(result, samples.size / sample_rate)
