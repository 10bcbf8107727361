"""Batch WER evaluation of an early-exit encoder: every exit, and every exit policy, against compute.

One forward pass per batch gives every exit's CTC posteriors (full context, or under the streaming
chunk mask). From them, per utterance:

* each exit's hypothesis (CTC greedy and/or prefix beam search) and its word errors;
* for each *policy* (an :class:`~asr_ee.exits.criteria.ExitCriterion` at one threshold, or the
  oracle) the exit it chooses for the whole utterance and for each chunk of ``chunk_frames``
  encoder frames, and the hypothesis decoded from the chosen exits' posteriors spliced chunk by
  chunk.

Choosing is selection only: each criterion's value is computed once per exit (and chunk) with the
same :class:`~asr_ee.exits.criteria.ExitSelector` streaming uses, and every threshold reads it. The
model never runs again per policy.

Compute is counted per encoder frame: a frame decided at exit k costs exit k's ``compute_fraction``
(:func:`asr_ee.models.flops.exit_costs`: of full depth, every earlier exit head included), and
``avg_exit_layer`` is weighted by frames the same way. The time to reach each exit is measured in the
same forward pass (hooks on the exit heads), which is what a forward stopping there would take.

Per-chunk choices read the posteriors of one forward pass. Under the chunk mask
(``attention: chunk``) these are exactly what a stream computes with ``SkipPolicy.RECOMPUTE`` (when
the skipped chunks are still in the left-context window); with ``SkipPolicy.COPY`` a stream only
approximates them. Under full attention they are the offline counterpart.

The oracle is a bound, not a deployable policy: it needs the last exit. Per utterance it takes the
shallowest exit whose decoded tokens equal the last exit's; per chunk, the shallowest exit whose
frame-wise best tokens equal the last exit's on that chunk. Either way, with greedy decoding its
hypothesis is the last exit's.

Shapes: B batch, T fbank frames, T' encoder frames (40 ms), F mel bins, V vocabulary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from tqdm import tqdm

from asr_ee.config import ConfigError
from asr_ee.data.tokenizer import Tokenizer
from asr_ee.decoding.ctc import greedy_decode, prefix_beam_search
from asr_ee.decoding.lm import DEFAULT_LENGTH_BONUS, DEFAULT_LM_WEIGHT, NgramLM
from asr_ee.decoding.wer import WordErrors, word_errors
from asr_ee.exits.criteria import DEFAULT_SWEEPS, ExitCriterion, ExitSelector, frame_argmax
from asr_ee.features import FRAME_SHIFT_S, SAMPLE_RATE, make_fbank
from asr_ee.inputs import Utterance
from asr_ee.models import EarlyExitEncoder
from asr_ee.models.flops import ExitCost, exit_costs
from asr_ee.models.subsampling import MIN_INPUT_FRAMES

__all__ = ["Decoding", "Granularity", "PolicyKind", "DECODINGS", "GRANULARITIES", "POLICY_KINDS", "Policy",
           "EvaluationConfig", "Failure", "Selection", "PolicyOutcome", "UtteranceResult", "EvaluationResult",
           "ExitTimer", "evaluate", "choose_exits", "criterion_values", "first_accepted", "oracle_exit", "segment_bounds",
           "visible_keys"]

Decoding = Literal["greedy", "beam", "lm"]
Granularity = Literal["utterance", "chunk"]
PolicyKind = Literal["entropy", "confidence", "confidence_min", "patience", "fixed", "oracle"]

DECODINGS: tuple[Decoding, ...] = ("greedy", "beam", "lm")
GRANULARITIES: tuple[Granularity, ...] = ("utterance", "chunk")
POLICY_KINDS: tuple[PolicyKind, ...] = ("entropy", "confidence", "confidence_min", "patience", "fixed", "oracle")


@dataclass(frozen=True)
class Policy:
    """An exit criterion at one threshold, or the oracle (``kind="oracle"``, no threshold)."""

    kind: PolicyKind
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise ConfigError(f"unknown exit criterion {self.kind!r}; choose from {list(POLICY_KINDS)}")
        if (self.kind == "oracle") != (self.threshold is None):
            raise ConfigError(f"{self.kind}: the oracle takes no threshold, every other criterion needs one")

    @property
    def name(self) -> str:
        return "oracle" if self.threshold is None else f"{self.kind}@{self.threshold:g}"

    def criterion(self) -> ExitCriterion:
        if self.threshold is None:
            raise ValueError("the oracle is not an ExitCriterion: it needs the last exit")
        return ExitCriterion(self.kind, self.threshold)  # type: ignore[arg-type]


@dataclass
class EvaluationConfig:
    """How to evaluate.

    Attributes:
        decodings: CTC decoders to score: ``greedy``, ``beam`` (prefix beam search) and/or ``lm``
            (prefix beam search with a token n-gram LM fused, :mod:`asr_ee.decoding.lm`).
        beam: beam size of the prefix beam search.
        lm_weight: weight of the LM's log-probability (``lm`` decoding).
        length_bonus: per-token bonus offsetting the LM's cost (``lm`` decoding).
        chunk_frames: encoder frames (40 ms each) per chunk, for per-chunk exit decisions and for
            the chunk attention mask.
        attention: ``full`` (offline: every frame sees the whole utterance) or ``chunk`` (the
            streaming chunk mask of ``chunk_frames`` and ``left_context_chunks``).
        left_context_chunks: with ``attention: chunk``, chunks of left context; None: all.
        criteria: the criteria to sweep (``oracle`` included).
        thresholds: per criterion, thresholds replacing ``DEFAULT_SWEEPS``; ``fixed`` defaults to
            every exit index.
        batch_seconds: padded audio seconds per forward batch.
        window_utterances: utterances read and sorted by length at a time (bounds memory).
        device: torch device of the forward.
        progress: show a tqdm progress bar.
    """

    decodings: list[Decoding] = field(default_factory=lambda: ["greedy"])
    beam: int = 8
    lm_weight: float = DEFAULT_LM_WEIGHT
    length_bonus: float = DEFAULT_LENGTH_BONUS
    chunk_frames: int = 8
    attention: Literal["full", "chunk"] = "full"
    left_context_chunks: int | None = None
    criteria: list[PolicyKind] = field(default_factory=lambda: list(POLICY_KINDS))
    thresholds: dict[str, list[float]] = field(default_factory=dict)
    batch_seconds: float = 120.0
    window_utterances: int = 512
    device: str = "cpu"
    progress: bool = False

    def __post_init__(self) -> None:
        if not self.decodings or len(set(self.decodings)) != len(self.decodings) or \
                not set(self.decodings) <= set(DECODINGS):
            raise ConfigError(f"decodings {self.decodings} must be distinct values of {list(DECODINGS)}")
        for name in ("beam", "chunk_frames", "window_utterances"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.attention not in ("full", "chunk"):
            raise ConfigError(f"attention must be 'full' or 'chunk', got {self.attention!r}")
        if self.left_context_chunks is not None and (self.attention != "chunk" or self.left_context_chunks < 0):
            raise ConfigError("left_context_chunks needs attention 'chunk' and must be >= 0")
        if self.batch_seconds <= 0:
            raise ConfigError(f"batch_seconds must be positive, got {self.batch_seconds}")
        unknown = sorted(set(self.criteria) - set(POLICY_KINDS))
        if unknown:
            raise ConfigError(f"unknown criteria {unknown}; choose from {list(POLICY_KINDS)}")
        if len(set(self.criteria)) != len(self.criteria):
            raise ConfigError(f"criteria {self.criteria} name one more than once")
        stray = sorted(set(self.thresholds) - (set(self.criteria) - {"oracle"}))
        if stray:
            raise ConfigError(f"thresholds given for {stray}, which are not criteria with thresholds "
                              f"among {self.criteria}")
        for kind, values in self.thresholds.items():
            if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ConfigError(f"thresholds for {kind} must be a non-empty list of numbers, got {values!r}")

    def policies(self, num_exits: int) -> list[Policy]:
        """Every (criterion, threshold) to report, in sweep order."""
        out = []
        for kind in self.criteria:
            if kind == "oracle":
                out.append(Policy("oracle"))
                continue
            default = list(range(num_exits)) if kind == "fixed" else DEFAULT_SWEEPS[kind]
            values = self.thresholds.get(kind, default)
            if kind == "fixed" and any(v != int(v) or not 0 <= v < num_exits for v in values):
                raise ConfigError(f"fixed thresholds are exit indices 0..{num_exits - 1}, got {values}")
            out += [Policy(kind, float(v)) for v in values]
        return out


@dataclass
class Failure:
    """An utterance that could not be evaluated, and why."""

    id: str
    source: str
    error: str


@dataclass
class Selection:
    """Exit index chosen for each segment (the utterance, or each chunk), and the segments' frames."""

    exits: tuple[int, ...]
    frames: tuple[int, ...]


@dataclass
class PolicyOutcome:
    policy: Policy
    granularity: Granularity
    decoding: Decoding
    selection: Selection
    errors: WordErrors | None  # None without a reference


@dataclass
class UtteranceResult:
    """What one utterance gave: per-exit hypotheses and each policy's choices.

    Attributes:
        hypotheses: per decoding, one hypothesis per exit.
        exit_errors: per decoding, word errors per exit (empty without a reference).
        visible_keys: attention keys seen, summed over encoder frames (for the FLOPs context).
    """

    index: int
    id: str
    source: str
    reference: str | None
    duration_seconds: float
    encoder_frames: int
    hypotheses: dict[str, list[str]]
    exit_errors: dict[str, list[WordErrors]]
    outcomes: list[PolicyOutcome]
    visible_keys: int

    def to_dict(self, exit_layers: Sequence[int]) -> dict[str, Any]:
        """The ``utterances.jsonl`` record; choices are exit layers (a list per chunk when chunked).

        The oracle's label carries the decoding (``oracle/greedy``): its choice depends on it.
        """
        choices: dict[str, dict[str, Any]] = {g: {} for g in GRANULARITIES}
        for o in self.outcomes:
            label = f"oracle/{o.decoding}" if o.policy.kind == "oracle" else o.policy.name
            layers = [exit_layers[k] for k in o.selection.exits]
            choices[o.granularity][label] = layers[0] if o.granularity == "utterance" else layers
        return {"id": self.id, "source": self.source, "reference": self.reference,
                "duration_seconds": round(self.duration_seconds, 3), "encoder_frames": self.encoder_frames,
                "exit_layers": list(exit_layers), "hypotheses": self.hypotheses,
                "word_errors": {d: [e.errors for e in errs] for d, errs in self.exit_errors.items()},
                "choices": choices}


@dataclass
class EvaluationResult:
    """``summary`` is the ``results.json`` content; ``utterances`` the per-utterance records."""

    summary: dict[str, Any]
    utterances: list[UtteranceResult]

    @property
    def num_evaluated(self) -> int:
        return len(self.utterances)


# ---------------------------------------------------------------------------------------- selection
def segment_bounds(num_frames: int, chunk_frames: int | None) -> list[tuple[int, int]]:
    """[start, end) frame ranges: the whole utterance (``chunk_frames=None``) or its chunks."""
    if chunk_frames is None:
        return [(0, num_frames)]
    return [(s, min(s + chunk_frames, num_frames)) for s in range(0, num_frames, chunk_frames)]


def criterion_values(kind: str, exit_log_probs: Sequence[torch.Tensor]) -> list[float]:
    """Each exit's value of criterion ``kind`` on (T, V) posteriors; thresholds do not change it."""
    selector = ExitSelector(ExitCriterion(kind, 0.0))  # type: ignore[arg-type]
    for k, log_probs in enumerate(exit_log_probs):
        selector.decide(k, log_probs)
    return selector.values


def first_accepted(criterion: ExitCriterion, values: Sequence[float]) -> int:
    """The first exit whose value the criterion accepts; the last exit always stops."""
    return next((k for k, v in enumerate(values) if criterion.accepts(v)), len(values) - 1)


def oracle_exit(outputs: Sequence[Sequence[int]]) -> int:
    """The shallowest exit whose output equals the last exit's."""
    return next(k for k, out in enumerate(outputs) if list(out) == list(outputs[-1]))


def choose_exits(exit_lps: list[torch.Tensor], bounds: list[tuple[int, int]], policies: list[Policy],
            granularity: Granularity, tokens: dict[str, list[list[int]]]) -> dict[tuple[Policy, str], tuple[int, ...]]:
    """Exit index per segment (``bounds``) for every (policy, decoding).

    Args:
        exit_lps: per exit, (T', V) log-posteriors of one utterance.
        bounds: the segments, from :func:`segment_bounds`.
        granularity: ``utterance`` (one segment: the oracle compares decoded tokens) or ``chunk``
            (the oracle compares frame-wise best tokens per chunk).
        tokens: per decoding, each exit's decoded tokens (the utterance oracle's outputs).
    """
    kinds = {p.kind for p in policies if p.kind != "oracle"}
    values = {kind: [criterion_values(kind, [lp[s:e] for lp in exit_lps]) for s, e in bounds] for kind in kinds}
    chunk_oracle = tuple(oracle_exit([frame_argmax(lp[s:e]).tolist() for lp in exit_lps]) for s, e in bounds)
    chosen: dict[tuple[Policy, str], tuple[int, ...]] = {}
    for policy in policies:
        if policy.kind != "oracle":
            exits = tuple(first_accepted(policy.criterion(), v) for v in values[policy.kind])
        for decoding in tokens:
            if policy.kind == "oracle":
                exits = (oracle_exit(tokens[decoding]),) if granularity == "utterance" else chunk_oracle
            chosen[(policy, decoding)] = exits
    return chosen


# ---------------------------------------------------------------------------------------- scoring
class _Decoder:
    def __init__(self, tokenizer: Tokenizer, cfg: EvaluationConfig, lm: NgramLM | None) -> None:
        self.tokenizer, self.cfg, self.lm = tokenizer, cfg, lm

    def tokens(self, log_probs: torch.Tensor, decoding: str) -> list[int]:
        if decoding == "greedy":
            return greedy_decode(log_probs, blank=self.tokenizer.blank_id)
        if decoding == "lm":
            return prefix_beam_search(log_probs, beam=self.cfg.beam, blank=self.tokenizer.blank_id, lm=self.lm,
                                      lm_weight=self.cfg.lm_weight, length_bonus=self.cfg.length_bonus)
        return prefix_beam_search(log_probs, beam=self.cfg.beam, blank=self.tokenizer.blank_id)

    def text(self, log_probs: torch.Tensor, decoding: str) -> str:
        return self.tokenizer.decode(self.tokens(log_probs, decoding))


def _spliced_text(exits: tuple[int, ...], bounds: list[tuple[int, int]], exit_lps: list[torch.Tensor],
                  decoding: str, texts: list[str], decoder: _Decoder, cache: dict) -> str:
    """Hypothesis of the chosen exits' posteriors, segment by segment (one exit: its own text)."""
    if not exits or len(set(exits)) == 1:
        return texts[exits[0] if exits else -1]
    key = (decoding, exits)
    if key not in cache:
        log_probs = torch.cat([exit_lps[k][s:e] for k, (s, e) in zip(exits, bounds)])  # (T', V)
        cache[key] = decoder.text(log_probs, decoding)
    return cache[key]


def visible_keys(num_frames: int, chunk_frames: int | None, left_context_chunks: int | None) -> int:
    """Sum over frames of the key frames each may attend to under the chunk mask (see masks.py)."""
    if chunk_frames is None:
        return num_frames * num_frames
    chunk = torch.arange(num_frames) // chunk_frames
    end = torch.clamp((chunk + 1) * chunk_frames, max=num_frames)
    start = torch.zeros_like(chunk) if left_context_chunks is None else \
        torch.clamp((chunk - left_context_chunks) * chunk_frames, min=0)
    return int((end - start).sum())


def _score(index: int, utt: Utterance, num_samples: int, exit_lps: list[torch.Tensor], policies: list[Policy],
           cfg: EvaluationConfig, decoder: _Decoder) -> UtteranceResult:
    """Everything one utterance contributes, from its per-exit posteriors [(T', V)]."""
    num_frames = exit_lps[0].size(0)
    tokens = {d: [decoder.tokens(lp, d) for lp in exit_lps] for d in cfg.decodings}
    texts = {d: [decoder.tokenizer.decode(t) for t in toks] for d, toks in tokens.items()}
    ref = utt.reference
    aligned: dict[str, WordErrors] = {}

    def errors(hyp: str) -> WordErrors:  # many policies give the same hypothesis: align it once
        assert ref is not None
        if hyp not in aligned:
            aligned[hyp] = word_errors(ref, hyp)
        return aligned[hyp]

    outcomes: list[PolicyOutcome] = []
    cache: dict[tuple[str, tuple[int, ...]], str] = {}  # spliced hypotheses, shared by granularities
    for granularity in GRANULARITIES:
        bounds = segment_bounds(num_frames, None if granularity == "utterance" else cfg.chunk_frames)
        frames = tuple(e - s for s, e in bounds)
        for (policy, d), exits in choose_exits(exit_lps, bounds, policies, granularity, tokens).items():
            hyp = _spliced_text(exits, bounds, exit_lps, d, texts[d], decoder, cache)
            outcomes.append(PolicyOutcome(policy, granularity, d, Selection(exits, frames),
                                          None if ref is None else errors(hyp)))
    exit_errors = {} if ref is None else {d: [errors(h) for h in hyps] for d, hyps in texts.items()}
    mask_chunk = cfg.chunk_frames if cfg.attention == "chunk" else None
    return UtteranceResult(index, utt.id, utt.source, ref, num_samples / SAMPLE_RATE, num_frames, texts,
                           exit_errors, outcomes, visible_keys(num_frames, mask_chunk, cfg.left_context_chunks))


# ---------------------------------------------------------------------------------------- reading, batching, forward
@dataclass
class _Features:
    index: int
    utterance: Utterance
    feats: torch.Tensor  # (T, F)
    num_samples: int


def _read(indexed: list[tuple[int, Utterance]]) -> tuple[list[_Features], list[Failure]]:
    """Load and featurize; any problem with one utterance makes it a :class:`Failure`, not an abort."""
    fbank, items, failed = make_fbank(), [], []
    for index, utt in indexed:
        try:
            samples = utt.load()
            feats = torch.from_numpy(fbank.extract(samples.numpy(), SAMPLE_RATE)).float()
            items.append(_Features(index, utt, feats, samples.numel()))
        except Exception as e:  # one bad file must not stop the evaluation; it is reported instead
            reason = str(e) or type(e).__name__
            if not isinstance(e, ValueError):  # AudioError/InputError are ValueErrors with a full message
                reason = f"{type(e).__name__}: {reason}"
            failed.append(Failure(utt.id, utt.source, reason))
    return items, failed


def duration_batches(items: list[_Features], batch_seconds: float) -> list[list[_Features]]:
    """Longest first; each batch holds what fits in ``batch_seconds`` of padded audio (at least one)."""
    max_frames = batch_seconds / FRAME_SHIFT_S
    batches: list[list[_Features]] = []
    for item in sorted(items, key=lambda f: -f.feats.size(0)):
        if batches and batches[-1][0].feats.size(0) * (len(batches[-1]) + 1) <= max_frames:
            batches[-1].append(item)
        else:
            batches.append([item])
    return batches


class ExitTimer:
    """Wall time from the start of each forward to each exit head's output, summed over forwards.

    A forward that runs every exit passes exit k exactly when a forward with ``num_exits=k+1`` would
    end, so one pass measures the cost of stopping at every exit.
    """

    def __init__(self, encoder: EarlyExitEncoder, device: torch.device) -> None:
        self.seconds = [0.0] * encoder.num_exits
        self._sync = device.type == "cuda"
        self._start = 0.0
        self._handles = [encoder.subsampling.register_forward_pre_hook(self._on_start)]
        self._handles += [head.register_forward_hook(partial(self._on_exit, k)) for k, head in enumerate(encoder.exits)]

    def _now(self) -> float:
        if self._sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _on_start(self, module: torch.nn.Module, args: tuple) -> None:
        self._start = self._now()

    def _on_exit(self, k: int, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.seconds[k] += self._now() - self._start

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()

    def __enter__(self) -> "ExitTimer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _warm_up(encoder: EarlyExitEncoder, cfg: EvaluationConfig) -> None:
    """One untimed forward on a second of silence, so the first batch's exit times are not inflated
    by one-off allocations."""
    silence = _Features(-1, Utterance("warm-up", None, "-"), torch.zeros(100, encoder.cfg.num_mel_bins), SAMPLE_RATE)
    _forward(encoder, [silence], cfg)


@torch.no_grad()
def _forward(encoder: EarlyExitEncoder, batch: list[_Features], cfg: EvaluationConfig) -> list[list[torch.Tensor]]:
    """Per utterance of the batch, per exit, (T', V) log-posteriors from one forward."""
    device = torch.device(cfg.device)
    lengths = torch.tensor([b.feats.size(0) for b in batch])
    feats = pad_sequence([b.feats for b in batch], batch_first=True)  # (B, T, F)
    if feats.size(1) < MIN_INPUT_FRAMES:
        feats = F.pad(feats, (0, 0, 0, MIN_INPUT_FRAMES - feats.size(1)))
    chunk = cfg.chunk_frames if cfg.attention == "chunk" else None
    outs, out_lens = encoder(feats.to(device), lengths.to(device), chunk_frames=chunk,
                             left_context_chunks=cfg.left_context_chunks)  # [(B, T', V)], (B,)
    return [[o[i, :n].float().cpu() for o in outs] for i, n in enumerate(out_lens.tolist())]


# ---------------------------------------------------------------------------------------- summary
def _error_fields(errors: WordErrors, scored: int) -> dict[str, Any]:
    """WER in percent (None when no utterance had a reference) and the error counts."""
    return {"wer": round(errors.wer, 4) if scored else None, "ins": errors.ins, "del": errors.dels,
            "sub": errors.subs, "num_words": errors.num_words}


def _per_exit_rows(results: list[UtteranceResult], cfg: EvaluationConfig, costs: list[ExitCost],
                   exit_seconds: list[float], audio_seconds: float) -> list[dict[str, Any]]:
    scored = sum(r.reference is not None for r in results)
    rows = []
    for d in cfg.decodings:
        for k, cost in enumerate(costs):
            errors = sum((r.exit_errors[d][k] for r in results if r.exit_errors), WordErrors())
            rows.append({"decoding": d, "exit_index": k, "exit_layer": cost.exit_layer, **_error_fields(errors, scored),
                         "compute_fraction": round(cost.compute_fraction, 6),
                         "gflops_per_audio_second": round(cost.gflops_per_second, 6), "params": cost.params,
                         "encoder_seconds": round(exit_seconds[k], 6),
                         "real_time_factor": exit_seconds[k] / audio_seconds if audio_seconds else None,
                         "time_fraction": exit_seconds[k] / exit_seconds[-1] if exit_seconds[-1] else None})
    return rows


def charged_exits(exits: tuple[int, ...], left_context_chunks: int | None) -> list[int]:
    """Depth each chunk's frames are computed to in a stream with ``SkipPolicy.RECOMPUTE``: a later
    chunk that goes deeper first runs the skipped blocks of the earlier chunks still inside its
    attention window, so chunk j costs the deepest exit among chunks j .. j + left_context_chunks."""
    horizon = len(exits) if left_context_chunks is None else left_context_chunks
    return [max(exits[j:j + horizon + 1]) for j in range(len(exits))]


def _policy_rows(results: list[UtteranceResult], costs: list[ExitCost], cfg: EvaluationConfig
                 ) -> list[dict[str, Any]]:
    """One row per (policy, granularity, decoding), in the order the outcomes were produced.

    Under the chunk mask, per-chunk policies are charged what a RECOMPUTE stream spends
    (:func:`charged_exits`); under full attention, each chunk is charged its own exit."""
    frames: dict[tuple, list[int]] = {}
    errors: dict[tuple, WordErrors] = {}
    for r in results:
        for o in r.outcomes:
            key = (o.policy, o.granularity, o.decoding)
            counts = frames.setdefault(key, [0] * len(costs))
            exits = o.selection.exits
            if o.granularity == "chunk" and cfg.attention == "chunk":
                exits = tuple(charged_exits(exits, cfg.left_context_chunks))
            for k, f in zip(exits, o.selection.frames):
                counts[k] += f
            errors[key] = errors.get(key, WordErrors()) + (o.errors or WordErrors())
    scored = sum(r.reference is not None for r in results)
    rows = []
    for (policy, granularity, decoding), counts in frames.items():
        total = sum(counts)
        share = [c / total for c in counts] if total else None
        rows.append({"criterion": policy.kind, "threshold": policy.threshold, "granularity": granularity,
                     "decoding": decoding, **_error_fields(errors[(policy, granularity, decoding)], scored),
                     "avg_exit_layer": None if share is None else
                     round(sum(s * c.exit_layer for s, c in zip(share, costs)), 6),
                     "compute_fraction": None if share is None else
                     round(sum(s * c.compute_fraction for s, c in zip(share, costs)), 6),
                     "exit_layer_share": None if share is None else
                     {str(c.exit_layer): round(s, 6) for s, c in zip(share, costs)}})
    _mark_pareto(rows)
    return rows


def _mark_pareto(rows: list[dict[str, Any]]) -> None:
    """``pareto``: no other deployable policy of the same granularity and decoding has both a lower
    (or equal) WER and a lower (or equal) compute, one of them strictly. The oracle never is."""
    def dominates(a: dict, b: dict) -> bool:
        return (a["wer"] <= b["wer"] and a["compute_fraction"] <= b["compute_fraction"]
                and (a["wer"] < b["wer"] or a["compute_fraction"] < b["compute_fraction"]))

    for row in rows:
        row["pareto"] = False
        if row["criterion"] == "oracle" or row["wer"] is None or row["compute_fraction"] is None:
            continue
        peers = [o for o in rows if o["criterion"] != "oracle" and o["wer"] is not None
                 and o["compute_fraction"] is not None and o["granularity"] == row["granularity"]
                 and o["decoding"] == row["decoding"]]
        row["pareto"] = not any(dominates(o, row) for o in peers)


class _Clock:
    """Wall seconds per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"features": 0.0, "encoder": 0.0, "decode": 0.0}
        self._t0 = time.perf_counter()

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now

    def timing(self, audio_seconds: float, evaluated: int) -> dict[str, Any]:
        total = time.perf_counter() - self._t0
        return {**{f"{k}_seconds": round(v, 4) for k, v in self.seconds.items()}, "total_seconds": round(total, 4),
                "audio_seconds": round(audio_seconds, 4), "utterances_per_second": evaluated / total if total else None,
                "real_time_factor": total / audio_seconds if audio_seconds else None,
                "torch_threads": torch.get_num_threads()}


def _summary(results: list[UtteranceResult], failed: list[Failure], cfg: EvaluationConfig,
             encoder: EarlyExitEncoder, exit_seconds: list[float], clock: _Clock) -> dict[str, Any]:
    frames = sum(r.encoder_frames for r in results)
    context_frames = sum(r.visible_keys for r in results) / frames if frames else float(cfg.chunk_frames)
    costs = exit_costs(encoder.cfg, context_frames)
    audio_seconds = sum(r.duration_seconds for r in results)
    return {
        "num_utterances": len(results) + len(failed), "num_evaluated": len(results), "num_failed": len(failed),
        "num_with_reference": sum(r.reference is not None for r in results),
        "exit_layers": list(encoder.cfg.exit_layers),
        "settings": {"decodings": list(cfg.decodings), "beam": cfg.beam,
                     **({"lm_weight": cfg.lm_weight, "length_bonus": cfg.length_bonus} if "lm" in cfg.decodings else {}), "chunk_frames": cfg.chunk_frames,
                     "attention": cfg.attention, "left_context_chunks": cfg.left_context_chunks,
                     "context_frames": round(context_frames, 3), "batch_seconds": cfg.batch_seconds,
                     "device": cfg.device},
        "per_exit": _per_exit_rows(results, cfg, costs, exit_seconds, audio_seconds),
        "policies": _policy_rows(results, costs, cfg),
        "failed": [{"id": f.id, "source": f.source, "error": f.error} for f in failed],
        "timing": clock.timing(audio_seconds, len(results)),
    }


def evaluate(encoder: EarlyExitEncoder, tokenizer: Tokenizer, utterances: Sequence[Utterance],
             cfg: EvaluationConfig, lm: NgramLM | None = None) -> EvaluationResult:
    """Evaluate every exit and every policy of ``cfg`` on ``utterances``.

    ``lm`` (built for ``tokenizer``) is needed by, and only used by, the ``lm`` decoding.

    Utterances that cannot be read are listed in ``summary["failed"]``; the others are evaluated.
    Results come back in input order.
    """
    device = torch.device(cfg.device)
    encoder = encoder.eval().to(device)
    if ("lm" in cfg.decodings) != (lm is not None):
        raise ConfigError("the 'lm' decoding needs a language model, and a language model needs the 'lm' decoding")
    if lm is not None:
        lm.check_tokenizer(tokenizer)
    policies, decoder, clock = cfg.policies(encoder.num_exits), _Decoder(tokenizer, cfg, lm), _Clock()
    _warm_up(encoder, cfg)
    indexed = list(enumerate(utterances))
    results: list[UtteranceResult] = []
    failed: list[Failure] = []
    with ExitTimer(encoder, device) as timer, \
            tqdm(total=len(indexed), disable=not cfg.progress, unit="utt", desc="evaluate") as bar:
        for start in range(0, len(indexed), cfg.window_utterances):
            t = time.perf_counter()
            items, bad = _read(indexed[start:start + cfg.window_utterances])
            t = clock.add("features", t)
            failed += bad
            bar.update(len(bad))
            for batch in duration_batches(items, cfg.batch_seconds):
                outs = _forward(encoder, batch, cfg)
                t = clock.add("encoder", t)
                results += [_score(item.index, item.utterance, item.num_samples, exit_lps, policies, cfg, decoder)
                            for item, exit_lps in zip(batch, outs)]
                t = clock.add("decode", t)
                bar.update(len(batch))
    results.sort(key=lambda r: r.index)  # batches run longest first; failures are already in order
    return EvaluationResult(_summary(results, failed, cfg, encoder, timer.seconds, clock), results)
