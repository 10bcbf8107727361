"""``asr-ee train-gate``: train a model's learned exit gate on its frozen encoder's outputs.

    asr-ee train-gate --model exp/small/model.pt --cuts data/cuts_dev.jsonl.gz \\
        [--label tokens|frames|path [--lm LM --path-margin 0.1]] [--reference-layer 10] [--chunk-frames 8 --left-context-chunks 4] [--limit N]
        [--hold-chunks 1] [--output exp/small/model.gate.json]

The encoder runs under the streaming chunk mask (as ``asr-ee evaluate --attention chunk`` runs it,
which is what a stream computes); for every chunk and exit it collects the gate's features and
whether the exit's output matches the reference exit's on the chunk (``--label``: ``tokens``, the
best-path tokens after CTC's collapse, ``frames``, every frame's best token, or ``path``, the path the
reference's beam + LM decoding takes through the chunk scored nearly as well; the reference is the
model's streaming ceiling, ``max_exit_layer`` of its defaults, or the last exit: see
:mod:`asr_ee.exits.gate_labels`), fits one logistic
regression per exit (:mod:`asr_ee.exits.gate_fit`), records on the same data the compute each threshold
costs with the streams' hold (``--hold-chunks``, default the model's; what ``asr-ee evaluate
--gate-budget`` and the load controller's budget turn into a threshold) and writes the gate beside the
model (``model.gate.json``, :mod:`asr_ee.exits.gate`), with the model's fingerprint. Minutes on a CPU for a few hundred cuts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from asr_ee.exits.gate_labels import DEFAULT_PATH_MARGIN

if TYPE_CHECKING:
    import numpy as np

    from asr_ee.decoding.lm import NgramLM

    from asr_ee.evaluation import EvaluationConfig
    from asr_ee.inputs import Utterance
    from asr_ee.models import EarlyExitEncoder

__all__ = ["register", "run", "collect_examples", "read_as_streams_end", "chunk_views_per_utterance"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-gate", help="train the learned exit gate (criterion 'gate') of a model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="exported model (default: the shipped exp/small/model.pt)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer .model, for checkpoints that do not carry one")
    p.add_argument("--cuts", type=Path, required=True, help="lhotse cut manifest to train on (a dev split)")
    p.add_argument("--output", type=Path, help="gate file, JSON (default: <model stem>.gate.json beside the model)")
    p.add_argument("--chunk-frames", type=int, default=8, help="encoder frames (40 ms) per chunk")
    p.add_argument("--left-context-chunks", type=int, default=4, help="chunks of left context of the chunk mask")
    p.add_argument("--label", choices=["tokens", "frames", "path"], default="tokens",
                   help="what 'matches the reference exit' means on a chunk: the same best-path tokens "
                        "(default), the same best token on every frame, or (path) a mean log-probability per "
                        "frame of the reference's beam + LM path within --path-margin of the reference's")
    p.add_argument("--lm", type=Path, help="token LM of the path label's beam + LM decoding (default: the shipped "
                                          "LM with the shipped model)")
    p.add_argument("--path-margin", type=float, default=DEFAULT_PATH_MARGIN,
                   help=f"nats per frame the path label allows an exit below the reference (default {DEFAULT_PATH_MARGIN})")
    p.add_argument("--reference-layer", type=int,
                   help="the exit layer the gate compares with (default: the model's max_exit_layer default, "
                        "else the last exit); the gate never goes deeper")
    p.add_argument("--hold-chunks", type=int,
                   help="the hold the compute calibration assumes (a chunk at least as deep as the gate chose on "
                        "that many chunks before it; default: the model's hold_chunks default, else 0)")
    p.add_argument("--limit", type=int, help="use only the first N cuts")
    p.add_argument("--l2", type=float, default=1e-3, help="L2 penalty of the logistic regressions")
    p.add_argument("--batch-seconds", type=float, default=120.0, help="padded audio seconds per forward batch")
    p.add_argument("--threads", type=int, help="torch threads (default: every core)")
    p.set_defaults(func=run)


def _ending_as_streams_do(utterances: list[Utterance]) -> list[Utterance]:
    """The utterances with the silence a stream appends when its input ends (and evaluation under
    the chunk mask with it): the gate learns the chunks it will be asked about, the calibration
    counts them."""
    import dataclasses

    import torch

    from asr_ee import features

    tail_ms = features.DEFAULT_TAIL_SILENCE_MS
    if not tail_ms:
        return utterances
    if hasattr(features, "tail_silence"):
        tail = features.tail_silence(tail_ms)
    else:  # quiet noise where the feature module has it, plain silence otherwise
        tail = torch.zeros(features.tail_silence_samples(tail_ms))
    return [dataclasses.replace(u, loader=lambda u=u: torch.cat([u.load(), tail])) for u in utterances]


def read_as_streams_end(utterances: list[Utterance]):
    """Featurize the utterances with the silence a stream appends at its end: (items, failures)."""
    from asr_ee.evaluation.batching import read_features

    return read_features(list(enumerate(_ending_as_streams_do(utterances))))


def chunk_views_per_utterance(encoder: EarlyExitEncoder, items: list, cfg: EvaluationConfig):
    """Run the frozen encoder under the chunk mask on featurized utterances (:func:`read_as_streams_end`)
    and yield, per utterance: its index, the encoder frames of each chunk, each chunk's views of every
    exit (:func:`~asr_ee.exits.gate.chunk_views`) and the attention keys its frames see."""
    from asr_ee.evaluation.batching import ExitHidden, duration_batches, forward_exits
    from asr_ee.evaluation.scoring import visible_keys
    from asr_ee.exits.gate import chunk_views
    from asr_ee.exits.selection import segment_bounds

    with ExitHidden(encoder) as capture:
        for batch in duration_batches(items, cfg.batch_seconds):
            outs = forward_exits(encoder, batch, cfg)
            for item, exit_lps, hidden in zip(batch, outs, capture.take([lps[0].size(0) for lps in outs])):
                num_frames = exit_lps[0].size(0)
                bounds = segment_bounds(num_frames, cfg.chunk_frames)
                yield (item.index, [e - s for s, e in bounds],
                       [chunk_views(exit_lps, hidden, s, e) for s, e in bounds],
                       visible_keys(num_frames, cfg.chunk_frames, cfg.left_context_chunks))


def decoded_path(views: list, reference: int, blank_id: int, cfg: EvaluationConfig, lm: NgramLM | None) -> np.ndarray:
    """(T,) the frames of an utterance's beam + LM hypothesis at exit ``reference`` (its chunks' views
    joined), force-aligned to that exit's posteriors: what a ``path`` label scores exits on."""
    import numpy as np

    from asr_ee.decoding.ctc import prefix_beam_search
    from asr_ee.exits.gate_labels import viterbi_path

    log_probs = np.concatenate([v[reference].log_probs for v in views])
    tokens = prefix_beam_search(log_probs, beam=cfg.beam, blank=blank_id, lm=lm, lm_weight=cfg.lm_weight if lm else 0.0,
                                length_bonus=cfg.length_bonus if lm else 0.0)
    return viterbi_path(log_probs, tokens, blank_id)


def collect_examples(encoder: EarlyExitEncoder, utterances: list[Utterance], cfg: EvaluationConfig, blank_id: int,
                     *, reference: int | None = None, label: str = "frames", lm: NgramLM | None = None,
                     margin: float = DEFAULT_PATH_MARGIN
                     ) -> tuple[list[np.ndarray], list[np.ndarray], list[list[int]], float, int]:
    """Per readable utterance: (chunks, K-1, F) gate features, (chunks, K-1) labels (exit index
    ``reference``, default the last, as the reference; ``label`` as
    :func:`~asr_ee.exits.gate_labels.chunk_labels`, ``path`` decoding with ``lm``, within ``margin``) and the
    encoder frames of each chunk; then the mean attended context (frames, as evaluation's summary
    counts it) and how many utterances could not be read."""
    import numpy as np

    from asr_ee.exits.gate import chunk_examples

    items, failed = read_as_streams_end(utterances)
    features, labels, frames, keys = [], [], [], 0
    for _, counts, views, seen in chunk_views_per_utterance(encoder, items, cfg):
        paths = [None] * len(views)
        if label == "path" and views:
            top = len(views[0]) - 1 if reference is None else reference
            bounds = np.cumsum([0] + counts)
            whole = decoded_path(views, top, blank_id, cfg, lm)
            paths = [whole[s:e] for s, e in zip(bounds[:-1], bounds[1:])]
        examples = [chunk_examples(v, blank_id, reference=reference, label=label, path=p, margin=margin)
                    for v, p in zip(views, paths)]
        if not examples:
            continue
        features.append(np.stack([f for f, _ in examples]))
        labels.append(np.stack([y for _, y in examples]))
        frames.append(counts)
        keys += seen
    total = sum(sum(f) for f in frames)
    return features, labels, frames, keys / max(total, 1), len(failed)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from asr_ee.checkpoint import CheckpointError
    from asr_ee.config import ConfigError
    from asr_ee.evaluation import EvaluationConfig, charged_exits
    from asr_ee.exits.criteria import hold_exits
    from asr_ee.exits.fingerprint import model_fingerprint
    from asr_ee.exits.gate import gate_path
    from asr_ee.exits.gate_fit import calibrate, fit_gate
    from asr_ee.inputs import InputError, from_cuts
    from asr_ee.models.flops import exit_costs
    from asr_ee.pretrained import load_pretrained, resolve_lm

    try:
        if args.limit is not None and args.limit < 1:
            raise ConfigError("--limit must be >= 1")
        cfg = EvaluationConfig(chunk_frames=args.chunk_frames, attention="chunk",
                               left_context_chunks=args.left_context_chunks, batch_seconds=args.batch_seconds,
                               criteria=["fixed"])
        pretrained = load_pretrained(args.model, args.tokenizer)
        pretrained.encoder.check_chunk_frames(args.chunk_frames)
        layers = list(pretrained.encoder.cfg.exit_layers)
        reference_layer = args.reference_layer or (pretrained.info.get("defaults") or {}).get("max_exit_layer") or layers[-1]
        if reference_layer not in layers:
            raise ConfigError(f"--reference-layer {reference_layer} is not an exit layer of this model ({layers})")
        hold = args.hold_chunks if args.hold_chunks is not None else \
            (pretrained.info.get("defaults") or {}).get("hold_chunks", 0)
        if hold < 0:
            raise ConfigError(f"--hold-chunks must be >= 0, got {hold}")
        utterances = from_cuts(args.cuts)[: args.limit]
        lm = resolve_lm(args.lm, pretrained, required=True) if args.label == "path" else None
        if args.lm is not None and args.label != "path":
            raise ConfigError("--lm is used by the path label only: add --label path")
    except (ConfigError, InputError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"asr-ee train-gate: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    encoder, blank_id = pretrained.encoder.eval(), pretrained.tokenizer.blank_id
    reference = layers.index(reference_layer)
    features, labels, frames, context_frames, failed = collect_examples(encoder, utterances, cfg, blank_id,
                                                                        reference=reference, label=args.label,
                                                                        lm=lm, margin=args.path_margin)
    if not features:
        print(f"asr-ee train-gate: no readable utterance in {args.cuts}", file=sys.stderr)
        return 1
    x, y = np.concatenate(features), np.concatenate(labels)  # (N, K-1, F), (N, K-1)
    gate = fit_gate(x, y, exit_layers=layers, blank_id=blank_id, fingerprint=model_fingerprint(encoder), l2=args.l2)
    gate.label = f"{args.label}@{reference_layer}"
    probs = [np.stack([gate.probabilities(k, f[:, k]) for k in range(f.shape[1])], 1) for f in features]
    accuracy = ((np.concatenate(probs) >= 0.5) == (y == 1)).mean(0)  # (K-1,)
    fractions = [c.compute_fraction for c in exit_costs(encoder.cfg, context_frames)]
    gate.calibration = calibrate(probs, frames, fractions, layers,
                                 lambda e: charged_exits(hold_exits(e, hold), args.left_context_chunks),
                                 tops=range(len(layers)))
    gate.info = {"cuts": str(args.cuts), "utterances": len(features), "failed": failed, "chunks": int(x.shape[0]),
                 "label": args.label, "reference_layer": reference_layer,
                 **({"path_margin": args.path_margin} if args.label == "path" else {}),
                 "chunk_frames": args.chunk_frames, "left_context_chunks": args.left_context_chunks,
                 "context_frames": round(context_frames, 3), "l2": args.l2, "hold_chunks": hold,
                 "match_rate": [round(float(v), 4) for v in y.mean(0)],
                 "train_accuracy": [round(float(v), 4) for v in accuracy]}
    output = args.output or gate_path(pretrained.path)
    gate.save(output)
    print(f"gate of {pretrained.path}: {x.shape[0]} chunks of {len(features)} utterances ({failed} unreadable)")
    print(f" exit layer | matches layer {reference_layer} ({args.label}) | train accuracy")
    for layer, rate, acc in zip(layers, gate.info["match_rate"], gate.info["train_accuracy"]):
        print(f" {layer:>10d} | {rate:>{24 + len(args.label)}.3f} | {acc:>14.3f}")
    print(f" threshold | compute (exits up to layer {reference_layer}, hold {hold}) | mean exit layer")
    for threshold, compute, layer in gate.calibration[reference]:
        if threshold in (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999):
            print(f" {threshold:>9g} | {compute:>28.3f} | {layer:>15.2f}")
    print(f"wrote {output}")
    return 0
