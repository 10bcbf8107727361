"""The ``results.json`` summary: per-exit rows, per-policy rows (WER against compute, the Pareto
front), settings and timing.

Compute is counted per encoder frame: a frame decided at exit k costs exit k's ``compute_fraction``
(:func:`asr_ee.models.flops.exit_costs`: of full depth, every earlier exit head included), and
``avg_exit_layer`` is weighted by frames the same way.

Every policy row also says what it cost against the last exit: ``wer_change`` (relative, in %)
and ``wer_change_ci95``, a paired bootstrap interval over utterances (:func:`relative_change_ci`):
on a few hundred utterances a couple of percent is a handful of word errors, and the interval
says which differences the split can tell apart.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from asr_ee.decoding.wer import WordErrors
from asr_ee.evaluation.batching import StageClock
from asr_ee.evaluation.config import EvaluationConfig
from asr_ee.evaluation.results import Failure, UtteranceResult
from asr_ee.models import EarlyExitEncoder
from asr_ee.models.flops import ExitCost, exit_costs

__all__ = ["charged_exits", "relative_change_ci", "summarize"]

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


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


def relative_change_ci(errors: Sequence[int], baseline: Sequence[int], *, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float] | None:
    """Relative change of the total word errors, ``sum(errors) / sum(baseline) - 1`` in %, and its 95%
    paired bootstrap interval: utterances are resampled with replacement (the same draws for both,
    and for every call with the same seed), the 2.5th and 97.5th percentiles of the resampled
    change. Both count errors on the same utterances and references, so the ratio of errors is the
    ratio of WERs. None when the baseline has no errors."""
    a, b = np.asarray(errors, dtype=np.int64), np.asarray(baseline, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"errors and baseline must be 1-d and of one length, got {a.shape} and {b.shape}")
    if b.sum() == 0:
        return None
    draws = np.random.default_rng(seed).integers(0, len(b), size=(resamples, len(b)))
    sa, sb = a[draws].sum(axis=1), b[draws].sum(axis=1)
    change = 100.0 * (sa / np.maximum(sb, 1) - 1.0)
    low, high = np.percentile(change, [2.5, 97.5])
    return 100.0 * (a.sum() / b.sum() - 1.0), float(low), float(high)


def _policy_rows(results: list[UtteranceResult], costs: list[ExitCost], cfg: EvaluationConfig
                 ) -> list[dict[str, Any]]:
    """One row per (policy, granularity, decoding), in the order the outcomes were produced.

    Under the chunk mask, per-chunk policies are charged what a RECOMPUTE stream spends
    (:func:`charged_exits`); under full attention, each chunk is charged its own exit."""
    frames: dict[tuple, list[int]] = {}
    errors: dict[tuple, WordErrors] = {}
    per_utterance: dict[tuple, list[int]] = {}
    scored_results = [r for r in results if r.reference is not None and r.exit_errors]
    last = {d: [r.exit_errors[d][-1].errors for r in scored_results] for d in cfg.decodings}
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
            if r.reference is not None and r.exit_errors:
                per_utterance.setdefault(key, []).append((o.errors or WordErrors()).errors)
    scored = sum(r.reference is not None for r in results)
    rows = []
    for (policy, granularity, decoding), counts in frames.items():
        total = sum(counts)
        share = [c / total for c in counts] if total else None
        rows.append({"criterion": policy.kind, "threshold": policy.threshold, "hold_chunks": policy.hold,
                     "granularity": granularity,
                     "decoding": decoding, **_error_fields(errors[(policy, granularity, decoding)], scored),
                     "avg_exit_layer": None if share is None else
                     round(sum(s * c.exit_layer for s, c in zip(share, costs)), 6),
                     "compute_fraction": None if share is None else
                     round(sum(s * c.compute_fraction for s, c in zip(share, costs)), 6),
                     "exit_layer_share": None if share is None else
                     {str(c.exit_layer): round(s, 6) for s, c in zip(share, costs)},
                     **_change_fields(per_utterance.get((policy, granularity, decoding)), last.get(decoding))})
    _mark_pareto(rows)
    return rows


def _change_fields(errors: list[int] | None, baseline: list[int] | None) -> dict[str, Any]:
    """``wer_change`` (relative to the last exit, %) and its 95% bootstrap interval, or None."""
    change = None
    if errors and baseline and len(errors) == len(baseline):
        change = relative_change_ci(errors, baseline)
    if change is None:
        return {"wer_change": None, "wer_change_ci95": None}
    return {"wer_change": round(change[0], 3), "wer_change_ci95": [round(change[1], 3), round(change[2], 3)]}


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


def summarize(results: list[UtteranceResult], failed: list[Failure], cfg: EvaluationConfig,
              encoder: EarlyExitEncoder, exit_seconds: list[float], clock: StageClock) -> dict[str, Any]:
    """The ``results.json`` content of one evaluation."""
    frames = sum(r.encoder_frames for r in results)
    context_frames = sum(r.visible_keys for r in results) / frames if frames else float(cfg.chunk_frames)
    costs = exit_costs(encoder.cfg, context_frames)
    audio_seconds = sum(r.duration_seconds for r in results)
    lm_settings = {"lm_weight": cfg.lm_weight, "length_bonus": cfg.length_bonus} if "lm" in cfg.decodings else {}
    return {
        "num_utterances": len(results) + len(failed), "num_evaluated": len(results), "num_failed": len(failed),
        "num_with_reference": sum(r.reference is not None for r in results),
        "exit_layers": list(encoder.cfg.exit_layers),
        "settings": {"decodings": list(cfg.decodings), "beam": cfg.beam, **lm_settings,
                     "chunk_frames": cfg.chunk_frames,
                     "attention": cfg.attention, "left_context_chunks": cfg.left_context_chunks,
                     "context_frames": round(context_frames, 3), "batch_seconds": cfg.batch_seconds,
                     "device": cfg.device},
        "per_exit": _per_exit_rows(results, cfg, costs, exit_seconds, audio_seconds),
        "policies": _policy_rows(results, costs, cfg),
        "failed": [{"id": f.id, "source": f.source, "error": f.error} for f in failed],
        "timing": clock.timing(audio_seconds, len(results)),
    }
