"""Training the learned exit gate (:mod:`asr_ee.exits.gate`): one L2-regularized logistic
regression per exit fitted by torch's L-BFGS, and the compute calibration that turns a budget into
a threshold. Training needs torch; running a gate (:mod:`asr_ee.exits.gate`) does not.

Shapes: N chunks, K exits, F features.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from asr_ee.exits.gate import CALIBRATION_THRESHOLDS, ExitGate

__all__ = ["fit_exit", "fit_gate", "first_exits", "calibrate"]


def _tensor(x: Any) -> torch.Tensor:
    return x.float() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x, np.float32))


def fit_exit(features: Any, labels: Any, l2: float = 1e-3, steps: int = 200
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logistic regression of ``labels`` (N,) on ``features`` (N, F), L2-regularized, by L-BFGS.
    Returns mean, std (the standardization), weight (F,) and bias ()."""
    features, labels = _tensor(features), _tensor(labels)
    mean = features.mean(0)
    std = features.std(0).clamp_min(1e-6)
    z = ((features - mean) / std).double()
    y = labels.double()
    weight = torch.zeros(z.size(1), dtype=torch.float64, requires_grad=True)
    prior = y.mean().clamp(1e-4, 1 - 1e-4)
    bias = torch.log(prior / (1 - prior)).detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ weight + bias, y) + l2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return mean, std, weight.detach().float(), bias.detach().float()


def fit_gate(features: Any, labels: Any, *, exit_layers: Sequence[int], blank_id: int, fingerprint: str,
             l2: float = 1e-3) -> ExitGate:
    """One logistic regression per exit on (N, K-1, F) chunk features and (N, K-1) labels
    (:func:`~asr_ee.exits.gate.chunk_examples` stacked; numpy arrays or tensors)."""
    features, labels = _tensor(features), _tensor(labels)
    fits = [fit_exit(features[:, k], labels[:, k], l2=l2) for k in range(features.size(1))]
    mean, std, weight, bias = (torch.stack([f[i] for f in fits]) for i in range(4))
    return ExitGate(list(exit_layers), blank_id, mean, std, weight, bias, fingerprint)


def first_exits(probabilities: Any, threshold: float, top: int) -> np.ndarray:
    """(N, K-1) gate probabilities -> (N,) the exit each chunk stops at: the first whose probability
    is >= ``threshold``, at most ``top`` (the last exit, or a ceiling, always stops)."""
    probabilities = np.asarray(probabilities)
    accepted = np.concatenate([probabilities >= threshold, np.ones((probabilities.shape[0], 1), bool)], 1)
    return np.minimum(accepted.argmax(1), top)


def calibrate(probabilities: Sequence[Any], frames: Sequence[Sequence[int]], exit_fractions: Sequence[float],
              exit_layers: Sequence[int], charge: Callable[[tuple[int, ...]], list[int]],
              tops: Sequence[int] | None = None, thresholds: Sequence[float] = CALIBRATION_THRESHOLDS
              ) -> dict[int, list[tuple[float, float, float]]]:
    """Per top exit index (``tops``, default the last exit), rows (threshold, compute fraction, mean
    exit layer) of the chunks of some utterances, charged as evaluation charges them.

    Args:
        probabilities: per utterance, (chunks, K-1) the gate's probabilities.
        frames: per utterance, encoder frames per chunk.
        exit_fractions: per exit, its share of full-depth compute.
        charge: an utterance's chunk exits -> the depth each chunk is computed to (a RECOMPUTE stream
            catches up skipped blocks: ``asr_ee.evaluation.charged_exits``).
    """
    total = sum(sum(f) for f in frames)
    rows: dict[int, list[tuple[float, float, float]]] = {}
    for top in [len(exit_layers) - 1] if tops is None else tops:
        rows[top] = []
        for threshold in thresholds:
            compute = layer = 0.0
            for probs, counts in zip(probabilities, frames):
                exits = charge(tuple(first_exits(probs, threshold, top).tolist()))
                compute += sum(exit_fractions[k] * f for k, f in zip(exits, counts))
                layer += sum(exit_layers[k] * f for k, f in zip(exits, counts))
            rows[top].append((float(threshold), compute / max(total, 1), layer / max(total, 1)))
    return rows
