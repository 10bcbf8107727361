"""Is the exit gate limited by its classifier? Cross-validated on a dev split: the shipped gate (one
logistic regression per exit over :data:`asr_ee.exits.gate.FEATURES`) against richer features and a
small MLP, by the share of chunks whose chosen exit says something else than the reference exit
(best-path tokens, the gate's own label) at a given compute.

    python benchmarks/gate_features_cv.py [--model exp/small/model.pt] [--cuts DATA/cuts_dev.jsonl.gz]
        [--folds 5] [--compute 0.65,0.70,0.75]

The encoder runs under the streaming chunk mask (8 frames, 4 left chunks, the streams' tail
silence: what ``asr-ee train-gate`` sees). Candidate features per exit and chunk, beside the nine:
best-path token count, lowest and mean top-1 probability on non-blank frames, highest frame entropy,
blank mass on non-blank frames, non-blank frames below 0.9, and against the exits before: the same
best-path tokens as the exit before, the token-count change, the share of earlier exits with the
same tokens. Folds split utterances, not chunks. Compute per chunk is the analytic exit fraction
(:func:`asr_ee.models.flops.exit_costs`); the mismatch share is read off each variant's threshold
sweep at the compute asked for (linear interpolation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr_ee.commands.train_gate import chunk_views_per_utterance, read_as_streams_end  # noqa: E402
from asr_ee.evaluation import EvaluationConfig  # noqa: E402
from asr_ee.exits.gate import gate_features  # noqa: E402
from asr_ee.exits.gate_labels import best_path_tokens, chunk_labels  # noqa: E402
from asr_ee.inputs import from_cuts  # noqa: E402
from asr_ee.models.flops import exit_costs  # noqa: E402
from asr_ee.pretrained import load_pretrained  # noqa: E402

THRESHOLDS = (0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99)


def extra_features(view, history, blank_id: int) -> list[float]:
    """The candidate features of one exit on one chunk (see the module docstring)."""
    lp = view.log_probs
    probs, best = np.exp(lp), view.argmax
    speech = best != blank_id
    tokens = best_path_tokens(best, blank_id)
    top1 = probs.max(-1)
    entropy = -(probs * lp).sum(-1) / np.log(lp.shape[-1])
    out = [len(tokens), top1[speech].min() if speech.any() else 1.0, top1[speech].mean() if speech.any() else 1.0,
           entropy.max() if entropy.size else 0.0, float((probs[:, blank_id] * speech).sum()),
           float(((top1 < 0.9) & speech).sum())]
    if not history:
        return out + [0.0, 0.0, 0.0]
    earlier = [best_path_tokens(h.argmax, blank_id) for h in history]
    return out + [float(tokens == earlier[-1]), len(tokens) - len(earlier[-1]),
                  float(np.mean([t == tokens for t in earlier]))]


def collect(model: Path, cuts: Path, reference_layer: int):
    pretrained = load_pretrained(model, None)
    encoder, blank_id = pretrained.encoder.eval(), pretrained.tokenizer.blank_id
    layers = list(encoder.cfg.exit_layers)
    reference = layers.index(reference_layer)
    cfg = EvaluationConfig(chunk_frames=8, attention="chunk", left_context_chunks=4, batch_seconds=120.0,
                           criteria=["fixed"])
    items, _ = read_as_streams_end(from_cuts(cuts))
    base, extra, labels, utterance, frames, keys = [], [], [], [], [], 0
    gated = range(reference)  # exits below the reference; it always stops
    for index, counts, chunks, seen in chunk_views_per_utterance(encoder, items, cfg):
        keys += seen
        frames += counts
        for views in chunks:
            base.append(np.stack([gate_features(views[k], views[:k], blank_id) for k in gated]))
            extra.append(np.array([extra_features(views[k], views[:k], blank_id) for k in gated], np.float32))
            labels.append(np.array(chunk_labels(views, blank_id, reference=reference, kind="tokens"))[:reference])
            utterance.append(index)
    frames = np.array(frames)
    fractions = np.array([c.compute_fraction for c in exit_costs(encoder.cfg, keys / frames.sum())])[: reference + 1]
    return np.stack(base), np.stack(extra), np.stack(labels), np.array(utterance), frames, fractions


def fit(x: np.ndarray, y: np.ndarray, hidden: int, l2: float = 1e-3):
    """A logistic regression (hidden 0) or a one-hidden-layer MLP, L2, by L-BFGS; returns predict(x)."""
    x_t, y_t = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    mean, std = x_t.mean(0), x_t.std(0).clamp_min(1e-6)
    torch.manual_seed(0)
    dim = x.shape[1]
    net = (torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)) if hidden
           else torch.nn.Linear(dim, 1)).double()
    optimizer = torch.optim.LBFGS(net.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net((x_t - mean) / std)[:, 0], y_t)
        loss = loss + l2 * sum(p.square().sum() for n, p in net.named_parameters() if n.endswith("weight"))
        loss.backward()
        return loss

    optimizer.step(closure)
    return lambda z: torch.sigmoid(net((torch.from_numpy(z).double() - mean) / std)[:, 0]).detach().numpy()


def cross_validate(x_of, labels, utterance, folds: int, hidden: int) -> np.ndarray:
    """(N, K) out-of-fold probabilities; x_of(k) -> (N, F) the features of gated exit k."""
    probs = np.zeros(labels.shape)
    order = np.random.default_rng(0).permutation(np.unique(utterance))
    for fold in range(folds):
        held = np.isin(utterance, order[fold::folds])
        for k in range(labels.shape[1]):
            x = x_of(k)
            probs[held, k] = fit(x[~held], labels[~held, k], hidden)(x[held])
    return probs


def sweep(probs, labels, frames, fractions) -> list[tuple[float, float, float]]:
    """(threshold, compute, mismatch share of chunks) per threshold: the first exit >= threshold."""
    rows = []
    for t in THRESHOLDS:
        chosen = np.concatenate([probs >= t, np.ones((len(probs), 1), bool)], 1).argmax(1)
        padded = np.concatenate([labels, np.ones((len(labels), 1))], 1)
        mismatch = 1.0 - padded[np.arange(len(labels)), chosen]
        rows.append((t, float((fractions[chosen] * frames).sum() / frames.sum()), float(mismatch.mean())))
    return rows


def at_compute(rows, compute: float) -> float:
    rows = sorted(rows, key=lambda r: r[1])
    return float(np.interp(compute, [r[1] for r in rows], [r[2] for r in rows]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("exp/small/model.pt"))
    p.add_argument("--cuts", type=Path, default=Path("data/offline_tts_small/cuts_dev.jsonl.gz"))
    p.add_argument("--reference-layer", type=int, default=10)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--compute", default="0.65,0.70,0.75")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    base, extra, labels, utterance, frames, fractions = collect(args.model, args.cuts, args.reference_layer)
    computes = [float(c) for c in args.compute.split(",")]
    print(f"{args.model} on {args.cuts}: {len(labels)} chunks of {len(np.unique(utterance))} utterances, "
          f"{args.folds}-fold by utterance; exit fractions {np.round(fractions, 3).tolist()}")
    print("chunks whose chosen exit's best-path tokens differ from exit layer "
          f"{args.reference_layer}'s, at compute " + " / ".join(f"{c:.2f}" for c in computes))
    k_last = labels.shape[1] - 1
    print(f"  {'fixed exit (deepest gated)':34s} {1 - labels[:, k_last].mean():.4f} at {fractions[k_last]:.3f}")
    variants = {
        "logistic, the 9 features (shipped)": (lambda k: base[:, k], 0),
        "logistic, + token features": (lambda k: np.concatenate([base[:, k], extra[:, k, 6:]], 1), 0),
        "logistic, + all candidates": (lambda k: np.concatenate([base[:, k], extra[:, k]], 1), 0),
        "logistic, + earlier exits' features": (
            lambda k: np.concatenate([base[:, : k + 1].reshape(len(base), -1), extra[:, k]], 1), 0),
        "MLP 16 tanh, + all candidates": (lambda k: np.concatenate([base[:, k], extra[:, k]], 1), 16),
    }
    for name, (x_of, hidden) in variants.items():
        rows = sweep(cross_validate(x_of, labels, utterance, args.folds, hidden), labels, frames, fractions)
        print(f"  {name:34s} " + " / ".join(f"{at_compute(rows, c):.4f}" for c in computes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
