"""Streaming recognizer in sherpa-onnx's shape: the recognizer holds the model and the settings, each
utterance or microphone session is a :class:`~asr_ee.streaming.stream.Stream`::

    recognizer = Recognizer(load_pretrained(), StreamingConfig())
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, samples)        # as audio arrives
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    print(recognizer.result(stream).text)
    if recognizer.is_endpoint(stream):
        recognizer.reset(stream)                  # new segment, finished text kept

Per chunk: the load controller sets the compute budget (how far along its ladder of cheaper
thresholds the criterion is, :mod:`asr_ee.streaming.budget`) and the cap (deepest exit allowed)
from the recent real-time factor, the stream's backlog and its growth, and the CPU load; the
encoder runs block by block and the exit
criterion (:class:`~asr_ee.exits.criteria.ExitSelector`, the same one evaluation uses) stops it at
the first exit whose posteriors satisfy it; the CTC decoder takes that exit's posteriors.

Several ready streams are decoded in one ``infer`` call when their states stack (same position,
same cache sizes, same cap); each stream still decodes the posteriors of the first exit its own
criterion accepted (the batch runs as deep as its deepest member needs).

Everything here works on numpy arrays and imports no torch: the encoder is the backend's
(:func:`asr_ee.runtime.backend.streaming_encoder`: eager torch behind numpy, or the ONNX runtime),
so the criteria, the controller, endpointing, decoding and the trace are one code for both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Hashable

import numpy as np

from asr_ee.config import ConfigError
from asr_ee.decoding.align import TopKPosteriors, align_tokens
from asr_ee.decoding.ctc import BeamStreamDecoder, GreedyStreamDecoder
from asr_ee.decoding.lm import NgramLM
from asr_ee.exits.criteria import ExitCriterion, ExitModel, ExitSelector, hold_floor
from asr_ee.models.flops import ENCODER_FRAMES_PER_SECOND, ChunkCost
from asr_ee.pretrained import Pretrained
from asr_ee.runtime.backend import StreamingEncoder, streaming_encoder
from asr_ee.streaming.budget import threshold_ladder
from asr_ee.streaming.config import StreamingConfig
from asr_ee.streaming.controller import CpuLoadMonitor, LoadController, LoadReading
from asr_ee.streaming.endpoint import detect_endpoint
from asr_ee.streaming.stream import ChunkRecord, RecognitionResult, Segment, Stream, Word

__all__ = ["Recognizer"]

_S_PER_FRAME = 1.0 / ENCODER_FRAMES_PER_SECOND


@dataclass
class _BatchDecision:
    """``decide`` callback for a batch: one ExitSelector per stream; the batch stops when every
    stream has accepted an exit. Keeps each stream's first accepted exit and its posteriors."""

    selectors: list[ExitSelector]
    accepted: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict)

    def __call__(self, exit_index: int, log_probs: np.ndarray, hidden: np.ndarray) -> bool:
        for i, selector in enumerate(self.selectors):
            if i not in self.accepted and selector.decide(exit_index, log_probs[i:i + 1], hidden[i:i + 1]):
                self.accepted[i] = (exit_index, log_probs[i:i + 1])
        return len(self.accepted) == len(self.selectors)


@dataclass
class _Planned:
    """A stream's next chunk, decided before the encoder runs."""

    stream: Stream
    feed_frames: int
    cap: int
    reading: LoadReading
    criterion: ExitCriterion | None
    floor: int = 0  # the hold: no shallower than the criterion chose on the chunks before


class Recognizer:
    """Holds the model and the settings; no per-utterance state.

    Args:
        pretrained: model and tokenizer (:func:`asr_ee.pretrained.load_pretrained`, or an exported
            folder: :func:`asr_ee.runtime.load_model_for_backend`).
        config: streaming settings.
        clock: seconds, monotonic (``time.perf_counter``); tests pass a fake one.
        cpu_load: callable giving the CPU load of other processes, 0..1 (default: psutil).
        lm: token n-gram LM (:mod:`asr_ee.decoding.lm`) fused into ``beam`` decoding; None: CTC alone.
        gate: the learned criterion's model; None: with the ``gate`` criterion, the gate file beside
            the model file or in the exported folder (:func:`asr_ee.exits.gate.find_gate`), refused
            when trained on another model.
    """

    def __init__(self, pretrained: Pretrained, config: StreamingConfig | None = None, *,
                 clock: Callable[[], float] = time.perf_counter,
                 cpu_load: Callable[[], float] | None = None, lm: NgramLM | None = None,
                 gate: ExitModel | None = None) -> None:
        self.pretrained = pretrained
        self.lm = lm
        # the backend's encoder behind numpy: eager torch, or exported graphs on onnxruntime (asr_ee.runtime)
        self.encoder: StreamingEncoder = streaming_encoder(pretrained.encoder)
        self.tokenizer = pretrained.tokenizer
        self.config = config or StreamingConfig()
        self.clock = clock
        cfg = self.encoder.cfg
        self.encoder.check_chunk_frames(self.config.chunk_frames)
        if not cfg.causal:
            raise ConfigError("this model has a non-causal convolution and cannot stream")
        if lm is not None:
            if self.config.decoding != "beam":
                raise ConfigError("a language model is fused in beam search: set decoding 'beam' (or drop the LM)")
            lm.check_tokenizer(self.tokenizer)
        self.top = self._top_exit(list(cfg.exit_layers))
        self.cost = ChunkCost(cfg, context_frames=float(self.config.chunk_frames + self.config.left_context_frames))
        self.gate = gate
        if gate is None and self.config.criterion is not None and self.config.criterion.spec.needs_model:
            from asr_ee.exits.gate import find_gate, load_gate

            # checked against the model: a torch model's weights, or the fingerprint an export recorded
            self.gate = load_gate(find_gate(pretrained.path), pretrained.encoder)
        self.controller, self.thresholds = self._load_controller()
        # the criterion at each budget step (the configured one first), built once for the per-chunk plan
        self._ladder = [ExitCriterion(self.config.criterion.kind, t) for t in self.thresholds] \
            if self.config.criterion is not None else []
        if cpu_load is None:
            cpu_load = CpuLoadMonitor() if self.controller is not None else (lambda: 0.0)
        self.cpu_load = cpu_load

    def _load_controller(self) -> tuple[LoadController | None, list[float]]:
        """The load controller and the criterion's ladder of thresholds it moves the budget along
        (the configured threshold first; empty when the budget does not move)."""
        control = self.config.controller
        if control is None:
            return None, []
        thresholds = threshold_ladder(self.config.criterion, self.gate, self.top, control.budget_step,
                                      self.config.hold_chunks) if control.move_budget else []
        chunk_ms = 1000.0 * self.config.chunk_frames * _S_PER_FRAME
        return LoadController(control, self.top + 1, chunk_ms=chunk_ms,
                              budget_steps=max(0, len(thresholds) - 1)), thresholds

    def _top_exit(self, layers: list[int]) -> int:
        """Index of the deepest exit a chunk may reach (``max_exit_layer``, else the last)."""
        wanted = self.config.max_exit_layer
        if wanted is None:
            return len(layers) - 1
        if wanted not in layers:
            raise ConfigError(f"max_exit_layer {wanted} is not an exit of this model (exits at layers "
                              f"{', '.join(map(str, layers))})")
        return layers.index(wanted)

    # ------------------------------------------------------------------ streams
    def create_stream(self) -> Stream:
        return Stream(config=self.config, encoder_state=self.encoder.initial_state(1),
                      decoder=self._new_decoder(), frontend=self.encoder.frontend,
                      controller_state=None if self.controller is None else self.controller.initial_state(),
                      created_at=self.clock())

    def _new_decoder(self) -> GreedyStreamDecoder | BeamStreamDecoder:
        blank = self.tokenizer.blank_id
        if self.config.decoding == "beam":
            return BeamStreamDecoder(beam=self.config.beam, blank=blank, lm=self.lm,
                                     lm_weight=self.config.lm_weight, length_bonus=self.config.length_bonus)
        return GreedyStreamDecoder(blank=blank)

    def warm_up(self, seconds: float = 0.64) -> None:
        """Run ``seconds`` of silence through every exit and the decoder on a throwaway stream.

        The first chunk a recognizer decodes pays one-time costs (onnxruntime's first runs of each
        graph, the decoder's set-up): about 0.4 s on this project's machine, against ~9 ms for the
        chunks after it. A live source (the mic app) calls this before it starts, so that the load
        controller does not read those costs as a backlog and cut the first seconds' depth.
        """
        from asr_ee.features import SAMPLE_RATE

        stream = self.create_stream()
        stream.accept_waveform(SAMPLE_RATE, np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32))
        stream.input_finished()
        while (feed := stream.next_feed_frames()) is not None:
            out = self.encoder.infer(stream.take_feats(feed)[None], stream.encoder_state,
                                     left_context_frames=self.config.left_context_frames, decide=None,
                                     max_exit=self.top, skip_policy=self.config.skip_policy)
            stream.encoder_state = out.state
            if out.log_probs.shape[1]:
                stream.decoder.accept(out.log_probs[0])

    def is_ready(self, stream: Stream) -> bool:
        return stream.next_feed_frames() is not None

    def decode(self, stream: Stream) -> None:
        """Decode the stream's next chunk; it must be ready (:meth:`is_ready`)."""
        if not self.is_ready(stream):
            raise RuntimeError("decode() on a stream that is not ready; check is_ready() first")
        self.decode_streams([stream])

    def decode_streams(self, streams: list[Stream]) -> int:
        """Decode one chunk of every ready stream in ``streams`` (others are left alone), batching
        the ones whose states stack. Returns how many streams were decoded."""
        if len({id(s) for s in streams}) != len(streams):
            raise ValueError("decode_streams: the same stream is listed twice")
        ready = [s for s in streams if self.is_ready(s)]
        if not ready:
            return 0
        cpu_load, now = float(self.cpu_load()), self.clock()
        groups: dict[Hashable, list[_Planned]] = {}
        for stream in ready:
            plan = self._plan(stream, cpu_load, now)
            groups.setdefault(self._group_key(plan), []).append(plan)
        spans = [self._run_group(group) for group in groups.values()]
        if self.controller is not None:  # the controller sees the whole call: what the process spent
            total_s = sum(end - start for start, end, _ in spans)
            for _, _, decoded in spans:
                for stream, frames in decoded:
                    if stream.controller_state is not None:
                        self.controller.record(stream.controller_state, total_s, frames * _S_PER_FRAME)
        return len(ready)

    # ------------------------------------------------------------------ one chunk
    def _plan(self, stream: Stream, cpu_load: float, now: float) -> _Planned:
        """The chunk's cap and criterion: the controller's setting (its budget step picks the
        criterion's threshold on the ladder), or the configured ones without a controller."""
        feed = stream.next_feed_frames()
        assert feed is not None
        reading = LoadReading(rtf=None, backlog_ms=stream.backlog_ms, cpu_load=cpu_load, now_s=now)
        cap, criterion = self.top, self.config.criterion
        if self.controller is not None and stream.controller_state is not None:
            reading = LoadReading(stream.controller_state.recent_rtf(), reading.backlog_ms, cpu_load, now)
            setting = self.controller.decide(stream.controller_state, reading)
            cap = setting.cap
            if criterion is not None and setting.budget_step:
                criterion = self._ladder[setting.budget_step]
        return _Planned(stream, feed, cap, reading, criterion,
                        min(cap, hold_floor(stream.chosen_exits, self.config.hold_chunks)))

    @staticmethod
    def _group_key(plan: _Planned) -> Hashable:
        return plan.feed_frames, plan.cap, plan.stream.encoder_state.batch_key()

    def _run_group(self, group: list[_Planned]) -> tuple[float, float, list[tuple[Stream, int]]]:
        """Run one batch; returns its start and end time and the streams that got frames."""
        streams = [p.stream for p in group]
        feats = np.stack([s.take_feats(group[0].feed_frames) for s in streams])  # (B, N, F)
        state = streams[0].encoder_state if len(streams) == 1 else \
            type(streams[0].encoder_state).stack([s.encoder_state for s in streams])
        decision = None if self.config.criterion is None else \
            _BatchDecision([ExitSelector(p.criterion, self.gate, floor=p.floor) for p in group])
        start = self.clock()
        out = self.encoder.infer(feats, state, left_context_frames=self.config.left_context_frames,
                                 decide=decision, max_exit=group[0].cap, skip_policy=self.config.skip_policy)
        for stream, new_state in zip(streams, [out.state] if len(streams) == 1 else out.state.unstack()):
            stream.encoder_state = new_state
        frames = out.log_probs.shape[1]
        if frames == 0:
            return start, self.clock(), []  # the input's last few fbank frames made no encoder frame
        chosen = [self._chosen_exit(i, out.exit_index, out.log_probs, decision) for i in range(len(streams))]
        if decision is not None and self.config.hold_chunks:
            for stream, selector, (exit_index, _, _) in zip(streams, decision.selectors, chosen):
                # the criterion's own choice (capped where it accepted nothing below the cap)
                stream.chosen_exits.append(exit_index if selector.chosen is None else min(selector.chosen, exit_index))
        beam = self._beam_width(group[0].cap)
        for stream, (_, log_probs, _) in zip(streams, chosen):
            if isinstance(stream.decoder, BeamStreamDecoder):
                stream.decoder.beam = beam
            stream.decoder.accept(log_probs[0])  # (C, V)
            stream.posteriors.append(log_probs[0])
        end = self.clock()
        fraction = self.cost.fraction(out.exit_index, out.blocks_run, self.config.skip_policy)
        for plan, (exit_index, _, value) in zip(group, chosen):
            self._record(plan, exit_index, value, end - start, frames, fraction)
        return start, end, [(s, frames) for s in streams]

    def _beam_width(self, cap: int) -> int:
        """The configured beam, narrowed in proportion to the cap when the controller scales it."""
        if self.controller is None or not self.config.controller.scale_beam:
            return self.config.beam
        return max(1, round(self.config.beam * (cap + 1) / (self.top + 1)))

    def _chosen_exit(self, i: int, batch_exit: int, batch_log_probs: np.ndarray,
                     decision: _BatchDecision | None) -> tuple[int, np.ndarray, float | None]:
        """Stream ``i``'s exit, posteriors (1, C, V) and criterion value: its first accepted exit,
        else the batch's (the cap), where the criterion is evaluated for the trace."""
        if decision is None:
            return batch_exit, batch_log_probs[i:i + 1], None
        selector = decision.selectors[i]
        if i in decision.accepted:
            exit_index, log_probs = decision.accepted[i]
            return exit_index, log_probs, selector.values[exit_index]
        log_probs = batch_log_probs[i:i + 1]
        while len(selector.values) <= batch_exit:  # infer does not ask at the cap
            selector.decide(len(selector.values), log_probs)
        return batch_exit, log_probs, selector.values[batch_exit]

    def _record(self, plan: _Planned, exit_index: int, value: float | None, compute_s: float, frames: int,
                fraction: float) -> None:
        stream, layers = plan.stream, self.encoder.cfg.exit_layers
        stream.trace.append(ChunkRecord(
            exit_layer=layers[exit_index], criterion_value=value, cap=layers[plan.cap],
            compute_ms=1000.0 * compute_s, backlog_ms=plan.reading.backlog_ms, cpu_load=plan.reading.cpu_load,
            frames=frames, compute_fraction=fraction, audio_end_ms=1000.0 * stream.frames_done * _S_PER_FRAME,
            decoded_at_ms=1000.0 * (self.clock() - stream.created_at)))

    # ------------------------------------------------------------------ results and segments
    def _text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens).strip()

    def result(self, stream: Stream) -> RecognitionResult:
        tokens = list(stream.decoder.tokens)
        partial = self._text(tokens)
        text = " ".join(t for t in [s.text for s in stream.segments] + [partial] if t)
        words = [w for s in stream.segments for w in s.words] + (self._words(stream, tokens) if stream.done else [])
        return RecognitionResult(text=text, partial=partial, segments=list(stream.segments), tokens=tokens,
                                 chunks=list(stream.trace), is_final=stream.done, words=words)

    def _words(self, stream: Stream, tokens: list[int]) -> list[Word]:
        """The current segment's words: its tokens aligned to its posteriors (CTC Viterbi), grouped
        at word-initial pieces; a word's confidence is its least certain token's probability."""
        spans = align_tokens(stream.posteriors, tokens, blank=self.tokenizer.blank_id)
        groups: list[list] = []
        for span in spans:
            if not groups or self.tokenizer.id_to_piece(span.token).startswith("\u2581"):
                groups.append([])
            groups[-1].append(span)
        words = []
        for group in groups:
            text = self._text([s.token for s in group])
            if text:
                words.append(Word(text, (stream.segment_start_frame + group[0].start) * _S_PER_FRAME,
                                  (stream.segment_start_frame + group[-1].end) * _S_PER_FRAME,
                                  min(s.probability for s in group)))
        return words

    def is_endpoint(self, stream: Stream) -> bool:
        decoder = stream.decoder
        return detect_endpoint(self.config.endpoint, segment_frames=decoder.frames,
                               trailing_blank_frames=decoder.trailing_blank_frames,
                               has_text=bool(decoder.tokens)) is not None

    def reset(self, stream: Stream) -> None:
        """Close the current segment (kept in ``segments`` when it has text) and start a new one.
        The audio, features and encoder state carry on: nothing received is lost."""
        tokens = list(stream.decoder.tokens)
        if tokens:
            start_s, end_s = stream.segment_audio_s()
            stream.segments.append(Segment(self._text(tokens), tokens, start_s, end_s, self._words(stream, tokens)))
        stream.decoder = self._new_decoder()
        stream.posteriors = TopKPosteriors()
        stream.segment_start_frame = stream.frames_done
