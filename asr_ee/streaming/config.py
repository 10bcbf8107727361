"""Settings of the streaming recognizer: chunking, exit criterion, decoding, endpointing and the
live compute-load controller. Strict ``from_dict`` through :mod:`asr_ee.config`::

    cfg = StreamingConfig.from_dict({"chunk_frames": 8, "criterion": {"kind": "entropy", "threshold": 0.1}})

``criterion: None`` runs every chunk to the controller's cap (full depth when there is no
controller); ``controller: None`` switches the load controller off; ``endpoint: None`` never reports
an endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from asr_ee.config import ConfigError, from_dict, to_dict
from asr_ee.decoding.lm import DEFAULT_LENGTH_BONUS, DEFAULT_LM_WEIGHT
from asr_ee.exits.criteria import DEFAULT_THRESHOLDS, ExitCriterion, is_hold
from asr_ee.features import DEFAULT_TAIL_SILENCE_MS
from asr_ee.models.state import SkipPolicy

__all__ = ["EndpointRule", "EndpointConfig", "ControllerConfig", "StreamingConfig", "DEFAULT_SKIP_POLICY"]

# Chosen with benchmarks/streaming_rtf.py on dev (see README), for models trained as copy streams
# run (``chunk.skip_prob`` > 0, as the shipped one): at equal compute ``copy`` has the lower WER
# (entropy 0.01: 19.8% at 86% of full-depth compute, against recompute's 19.8% at 92% with
# entropy 0.02), and it has no catch-up spikes (p95 chunk latency 15 ms against 24-28 ms).
# ``recompute`` stays the better answer for a model trained without skip_prob: it is exact (a
# chunk's posteriors are those of the masked full forward at its exit) where copy only approximates
# what such a model saw in training.
DEFAULT_SKIP_POLICY = SkipPolicy.COPY


@dataclass
class EndpointRule:
    """One sherpa-onnx style endpoint rule; it fires when all its conditions hold.

    Attributes:
        must_contain_nonsilence: the segment must have decoded at least one token.
        min_trailing_silence_s: seconds of trailing blank frames at least.
        min_utterance_length_s: seconds of audio in the segment at least.
    """

    must_contain_nonsilence: bool
    min_trailing_silence_s: float
    min_utterance_length_s: float

    def __post_init__(self) -> None:
        if self.min_trailing_silence_s < 0 or self.min_utterance_length_s < 0:
            raise ConfigError(f"endpoint rule durations must be >= 0, got {self}")


@dataclass
class EndpointConfig:
    """sherpa-onnx's three rules (same defaults), rule 3 splitting at a pause.

    Attributes:
        rule1: long silence with nothing decoded (2.4 s).
        rule2: shorter silence after some text (1.2 s).
        rule3: segment longer than 20 s, whatever was decoded. In the ``split_window_s`` before
            that length it already fires at a pause (a run of blank frames), so that long speech
            is not cut inside a word: the pause it needs shrinks from ``split_pause_s`` at the
            window's start to 160 ms at the limit (the longest pause in the window tends to come
            first); at the limit it fires whatever the last frames were (speech with no pause of
            160 ms in the window is still cut there, possibly inside a word).
        split_window_s: seconds before rule 3's length in which a pause ends the segment (0: none).
        split_pause_s: blank seconds needed at the window's start.
    """

    rule1: EndpointRule = field(default_factory=lambda: EndpointRule(False, 2.4, 0.0))
    rule2: EndpointRule = field(default_factory=lambda: EndpointRule(True, 1.2, 0.0))
    rule3: EndpointRule = field(default_factory=lambda: EndpointRule(False, 0.0, 20.0))
    split_window_s: float = 4.0
    split_pause_s: float = 0.48

    def __post_init__(self) -> None:
        if self.split_window_s < 0 or self.split_pause_s < 0:
            raise ConfigError(f"endpoint split_window_s and split_pause_s must be >= 0, got "
                              f"{self.split_window_s}, {self.split_pause_s}")

    def rules(self) -> list[tuple[str, EndpointRule]]:
        return [("rule1", self.rule1), ("rule2", self.rule2), ("rule3", self.rule3)]


@dataclass
class ControllerConfig:
    """Live compute-load controller: sets how much compute a chunk may spend.

    Before each chunk it reads the stream's real-time factor (compute time / audio time), its
    backlog of audio waiting and how fast that grows, and the CPU load of other processes (see
    :mod:`asr_ee.streaming.controller` for the policy). Under load it caps the depth (the exit
    criterion still decides below the cap); with ``move_budget`` it first lowers the compute budget
    (the criterion's threshold steps toward cheaper: the learned gate's along its dev calibration)
    and caps only then. When the load goes it climbs back, one level after
    ``raise_after_chunks`` calm chunks in a row (hysteresis), a wait that doubles each time a raise
    has to be taken back soon after (up to ``max_raise_after_chunks``).

    Attributes:
        target_rtf: real-time factor the stream's own compute should stay under.
        latency_budget_ms: audio allowed to wait for decoding beyond the chunk being decoded (the
            excess backlog); over it the controller goes straight to the cheapest level.
        lower_at_ratio: the level drops when the excess backlog projected ``horizon_s`` ahead at its
            growth rate is over this share of ``latency_budget_ms`` (acting before the budget is hit).
        horizon_s: how far ahead the backlog's growth is projected.
        trend_window_s: clock seconds of readings the backlog's growth rate is fitted over (a fit
            needs half of it).
        growth_per_level: a fitted growth (seconds of backlog per second) under this is noise (the
            saw-tooth of arrivals and of waiting for other streams); over it an overloaded stream
            drops ``1 + growth / growth_per_level`` levels at once: a fast-growing backlog needs a
            big cut.
        cpu_high: CPU load of other processes (0..1 of the machine) over which the level drops as
            soon as the real-time factor is within ``relax_ratio`` of the target, before it goes
            over (a leading indicator; it never blocks a raise).
        relax_ratio: the real-time factor must be below ``relax_ratio`` times its target (and the
            excess backlog under the lowering bound, not growing) to rise.
        rtf_window_chunks: chunks the recent real-time factor is averaged over.
        lower_after_chunks: consecutive overloaded chunks before the level drops.
        raise_after_chunks: consecutive relaxed chunks before the level rises one step (halved
            after each raise that held, down to one chunk).
        max_raise_after_chunks: ceiling of the doubled wait after a taken-back raise.
        cpu_drop: when the CPU load of other processes has fallen by this much since a raise was
            taken back, the cause of the failure is gone: the wait returns to ``raise_after_chunks``.
        min_exit_index: the cap never goes below this exit index (0 = the first exit).
        move_budget: under load move the criterion's threshold toward cheaper before capping the
            depth (False: the cap alone, the criterion's threshold fixed). Off by default: on the
            load benchmark (quiet 2-core machine, 4 burners, gate 0.9, README "Streaming and
            transcription") the cap alone held 8 streams at 0.96 s of backlog and 29.8% WER, the
            budget first at 1.36 s and 37.5% (9 streams: 1.66 s / 37.9% against 2.46 s / 42.2%):
            below 0.9 the gate costs more WER per compute saved than a lower cap (dev: gate 0.8
            +13.6% at 0.68 of the compute, fixed exit 8 +7.6% at 0.70).
        budget_step: for the learned gate, the share of full-depth compute (on its calibration data)
            one budget level gives up.
        scale_beam: with beam search, the beam narrows with the cap (``beam * (cap + 1) / exits``,
            exits up to ``max_exit_layer``, at least 1), so the decoder's cost falls under load along
            with the encoder's.
    """

    target_rtf: float = 0.7
    latency_budget_ms: float = 500.0
    lower_at_ratio: float = 0.5
    horizon_s: float = 1.0
    trend_window_s: float = 2.0
    growth_per_level: float = 0.05
    cpu_high: float = 0.9
    relax_ratio: float = 0.7
    rtf_window_chunks: int = 4
    lower_after_chunks: int = 1
    raise_after_chunks: int = 6
    max_raise_after_chunks: int = 16
    cpu_drop: float = 0.3
    min_exit_index: int = 0
    move_budget: bool = False
    budget_step: float = 0.05
    scale_beam: bool = True

    def __post_init__(self) -> None:
        if self.target_rtf <= 0 or self.latency_budget_ms <= 0:
            raise ConfigError("controller target_rtf and latency_budget_ms must be positive")
        if not 0.0 < self.lower_at_ratio <= 1.0:
            raise ConfigError(f"controller lower_at_ratio must be in (0, 1], got {self.lower_at_ratio}")
        if self.horizon_s < 0 or self.trend_window_s <= 0 or self.growth_per_level <= 0:
            raise ConfigError("controller horizon_s must be >= 0, trend_window_s and growth_per_level > 0")
        if not 0.0 < self.budget_step < 1.0:
            raise ConfigError(f"controller budget_step must be in (0, 1), got {self.budget_step}")
        if not 0.0 <= self.cpu_high <= 1.0:
            raise ConfigError(f"controller cpu_high must be in [0, 1], got {self.cpu_high}")
        if not 0.0 < self.cpu_drop <= 1.0:
            raise ConfigError(f"controller cpu_drop must be in (0, 1], got {self.cpu_drop}")
        if not 0.0 < self.relax_ratio <= 1.0:
            raise ConfigError(f"controller relax_ratio must be in (0, 1], got {self.relax_ratio}")
        if min(self.rtf_window_chunks, self.lower_after_chunks, self.raise_after_chunks) < 1:
            raise ConfigError("controller chunk counts must be >= 1")
        if self.max_raise_after_chunks < self.raise_after_chunks or self.min_exit_index < 0:
            raise ConfigError("controller needs max_raise_after_chunks >= raise_after_chunks and "
                              "min_exit_index >= 0")


@dataclass
class StreamingConfig:
    """Everything the recognizer needs besides the model.

    Attributes:
        chunk_frames: encoder frames (40 ms) per chunk; even for Splitformer models.
        left_context_chunks: chunks of attention cache kept (finite: memory stays bounded).
        criterion: exit criterion evaluated after each exit; None = go to the cap.
        hold_chunks: a chunk goes at least as deep as the criterion chose on this many chunks before
            it (0 = each chunk on its own; :func:`asr_ee.exits.criteria.hold_exits`, which
            evaluation's ``--hold-chunks`` applies the same way). Below the cap, like the criterion.
        skip_policy: what layers above a chunk's exit get for it (``copy`` or ``recompute``).
        decoding: ``greedy`` or ``beam`` (CTC prefix beam search; with a language model given to the
            recognizer, fused with it).
        beam: beam width for ``beam``.
        lm_weight: weight of the language model's log-probability (``beam`` with an LM).
        length_bonus: per-token bonus offsetting the LM's cost (``beam`` with an LM).
        endpoint: endpoint rules; None = never an endpoint.
        controller: live compute-load controller; None = no cap (every exit allowed).
        max_exit_layer: the deepest exit any chunk may reach (a layer number that is one of the
            model's exits); None = the last exit. The criterion and the controller work below it.
        max_trace_chunks: keep only the last N chunk records per segment; None keeps them all.
        tail_silence_ms: silence appended when the input is finished, so the frames the
            subsampling holds back and the model's late CTC spikes for the last word are emitted
            (audio cut right after speech otherwise loses its last word; 0 = none). Not counted
            as received audio, and segment end times stop at the last non-blank frame.
    """

    chunk_frames: int = 8
    left_context_chunks: int = 4
    criterion: ExitCriterion | None = field(
        default_factory=lambda: ExitCriterion("entropy", DEFAULT_THRESHOLDS["entropy"]))
    hold_chunks: int = 0
    skip_policy: SkipPolicy = DEFAULT_SKIP_POLICY
    decoding: Literal["greedy", "beam"] = "greedy"
    beam: int = 8
    lm_weight: float = DEFAULT_LM_WEIGHT
    length_bonus: float = DEFAULT_LENGTH_BONUS
    endpoint: EndpointConfig | None = field(default_factory=EndpointConfig)
    controller: ControllerConfig | None = field(default_factory=ControllerConfig)
    max_exit_layer: int | None = None
    max_trace_chunks: int | None = None
    tail_silence_ms: float = DEFAULT_TAIL_SILENCE_MS

    def __post_init__(self) -> None:
        if self.chunk_frames < 1:
            raise ConfigError(f"chunk_frames must be >= 1, got {self.chunk_frames}")
        if self.left_context_chunks < 1:
            raise ConfigError(f"left_context_chunks must be >= 1 (finite, so memory is bounded), "
                              f"got {self.left_context_chunks}")
        try:
            self.skip_policy = SkipPolicy(self.skip_policy)
        except ValueError:
            raise ConfigError(f"skip_policy {self.skip_policy!r} is not one of "
                              f"{[p.value for p in SkipPolicy]}") from None
        if self.beam < 1:
            raise ConfigError(f"beam must be >= 1, got {self.beam}")
        if not is_hold(self.hold_chunks):
            raise ConfigError(f"hold_chunks must be a chunk count >= 0, got {self.hold_chunks!r}")
        if self.max_exit_layer is not None and self.max_exit_layer < 1:
            raise ConfigError(f"max_exit_layer must be a layer number >= 1 or null, got {self.max_exit_layer}")
        if self.max_trace_chunks is not None and self.max_trace_chunks < 1:
            raise ConfigError(f"max_trace_chunks must be >= 1 or null, got {self.max_trace_chunks}")
        if not 0.0 <= self.tail_silence_ms <= 10_000.0:
            raise ConfigError(f"tail_silence_ms must be in [0, 10000], got {self.tail_silence_ms}")

    @property
    def left_context_frames(self) -> int:
        return self.chunk_frames * self.left_context_chunks

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str | None = None) -> "StreamingConfig":
        return from_dict(cls, data, where=where)

    def to_dict(self) -> dict[str, Any]:
        data = to_dict(self)
        data["skip_policy"] = self.skip_policy.value
        return data
