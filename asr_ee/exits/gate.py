"""The learned exit gate: per exit, a logistic regression over cheap chunk features that gives the
probability that this chunk's output at this exit matches the last exit's (JEI-DNN's idea; the
hidden-state change between exits is MuE's signal). The criterion ``gate`` stops at the first exit
whose probability is >= its threshold.

Features of exit k on a chunk (:data:`FEATURES`), from its posteriors and the exit before it:
the mean normalized entropy, the mean top-1 minus top-2 probability (margin), the share of frames
whose best token is the blank, the lowest top-1 probability, the change of the first three from
exit k-1, the share of frames whose best token equals exit k-1's, and the mean cosine distance
between the hidden states the two exit heads read (0 where there is no earlier exit or no hidden
state).

The gate is stored as plain tensors in a file beside the model (:func:`gate_path`, ``model.gate.pt``
for ``model.pt``) with a fingerprint of the model's weights, so a gate trained for another model is
refused. It also carries its calibration on the data it was trained on: for each threshold, the
mean compute of the chunks it would stop, which turns a compute budget into a threshold
(:meth:`ExitGate.threshold_for_budget`).

Shapes: N chunks, K exits, F features, T frames, V vocabulary, D model dim.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from asr_ee.config import ConfigError
from asr_ee.exits.criteria import ExitView

__all__ = ["FEATURES", "CALIBRATION_THRESHOLDS", "ExitGate", "gate_features", "chunk_views", "chunk_examples",
           "gate_path", "model_fingerprint", "load_gate", "fit_exit", "fit_gate", "first_exits", "calibrate"]

FEATURES = ("entropy", "margin", "blank_share", "min_confidence", "entropy_change", "margin_change",
            "blank_share_change", "agrees_with_previous", "hidden_change")
FORMAT_VERSION = 1
# thresholds whose compute the calibration records: every hundredth, finer near 1
CALIBRATION_THRESHOLDS: tuple[float, ...] = tuple(sorted({round(i / 100, 2) for i in range(101)}
                                                         | {0.995, 0.998, 0.999}))


def _stats(view: ExitView, blank_id: int) -> tuple[float, float, float, float]:
    """Entropy (normalized), margin, blank share and lowest confidence of one exit on one chunk
    (numpy: the views hold numpy arrays, from either backend)."""
    lp = view.log_probs  # (T, V)
    if lp.size == 0:
        return 0.0, 1.0, 1.0, 1.0
    probs = np.exp(lp)
    entropy = float(-(probs * lp).sum(-1).mean() / math.log(lp.shape[-1]))
    top2 = -np.partition(-probs, 1, axis=-1)[:, :2]  # (T, 2), largest first
    margin = float((top2[:, 0] - top2[:, 1]).mean())
    blank_share = float((view.argmax == blank_id).mean())
    return entropy, margin, blank_share, float(top2[:, 0].min())


def _hidden_change(view: ExitView, previous: ExitView) -> float:
    if view.hidden is None or previous.hidden is None or view.hidden.size == 0:
        return 0.0
    a, b = view.hidden.astype(np.float32), previous.hidden.astype(np.float32)
    norms = np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-8)
    cos = (a * b).sum(-1) / norms  # (T,)
    return float((1.0 - cos).mean())


def gate_features(view: ExitView, history: Sequence[ExitView], blank_id: int) -> torch.Tensor:
    """(F,) the features of this exit (``view``) given the earlier exits of the same chunk."""
    entropy, margin, blank_share, min_conf = _stats(view, blank_id)
    if history:
        previous = history[-1]
        p_entropy, p_margin, p_blank, _ = _stats(previous, blank_id)
        agree = float((view.argmax == previous.argmax).mean()) if view.argmax.size else 1.0
        changes = [entropy - p_entropy, margin - p_margin, blank_share - p_blank, agree,
                   _hidden_change(view, previous)]
    else:
        changes = [0.0, 0.0, 0.0, 0.0, 0.0]
    return torch.tensor([entropy, margin, blank_share, min_conf, *changes])


def chunk_views(exit_log_probs: Sequence[torch.Tensor], hidden: Sequence[torch.Tensor] | None, start: int,
                end: int) -> list[ExitView]:
    """Per exit, what a criterion sees of frames [start, end): exit_log_probs [(T, V)], hidden [(T, D)]."""
    return [ExitView(lp[start:end], None if hidden is None else hidden[k][start:end])
            for k, lp in enumerate(exit_log_probs)]


def chunk_examples(views: Sequence[ExitView], blank_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk's training examples: (K-1, F) features of exits 0 .. K-2 (each given the exits
    before it, as :class:`~asr_ee.exits.criteria.ExitSelector` sees them) and (K-1,) labels, 1 where
    every frame's best token equals the last exit's (the chunk oracle's test)."""
    last = views[-1].argmax
    features = torch.stack([gate_features(views[k], views[:k], blank_id) for k in range(len(views) - 1)])
    labels = torch.tensor([float(bool((views[k].argmax == last).all())) for k in range(len(views) - 1)])
    return features, labels


def model_fingerprint(module: torch.nn.Module) -> str:
    """A short hash of a model's weights: which model a gate was trained on."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).to(torch.float32).numpy().tobytes())
    return digest.hexdigest()[:16]


def gate_path(model_path: str | Path) -> Path:
    """Where the gate of the model at ``model_path`` lives: ``<stem>.gate.pt`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.gate.pt")


@dataclass
class ExitGate:
    """Per-exit logistic regressions (exits 0 .. K-2; the last exit always stops).

    Attributes:
        exit_layers: the model's exit layers.
        blank_id: the CTC blank's token id.
        mean / std: (K-1, F) feature standardization per exit.
        weight: (K-1, F), bias: (K-1,) the regressions on standardized features.
        fingerprint: :func:`model_fingerprint` of the model it was trained on.
        label: what "matches" meant in training (``frames``: every frame's best token equals the
            last exit's on the chunk).
        calibration: per top exit index (the deepest exit a chunk may reach), rows
            ``(threshold, compute fraction, mean exit layer)`` measured on the training data.
        info: free-form facts (data, chunking, accuracy).
    """

    exit_layers: list[int]
    blank_id: int
    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    fingerprint: str
    label: str = "frames"
    calibration: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def probabilities(self, exit_index: int, features: torch.Tensor) -> torch.Tensor:
        """(N, F) features of exit ``exit_index`` -> (N,) probabilities that it matches the last exit."""
        if exit_index >= self.weight.size(0):
            return torch.ones(features.size(0))
        z = (features - self.mean[exit_index]) / self.std[exit_index]
        return torch.sigmoid(z @ self.weight[exit_index] + self.bias[exit_index])

    def value(self, exit_index: int, view: ExitView, history: Sequence[ExitView]) -> float:
        """The criterion value: probability that ``view`` (exit ``exit_index``) matches the last exit."""
        if exit_index >= self.weight.size(0):
            return 1.0
        return float(self.probabilities(exit_index, gate_features(view, history, self.blank_id)[None])[0])

    def threshold_for_budget(self, budget: float, top: int | None = None) -> float:
        """The highest calibrated threshold whose mean compute (on the training data, chunks stopping
        at most at exit ``top``) is within ``budget`` (a share of full-depth compute)."""
        top = len(self.exit_layers) - 1 if top is None else top
        rows = self.calibration.get(top)
        if not rows:
            raise ConfigError(f"this gate has no calibration for exit index {top}; retrain it (`asr-ee train-gate`)")
        within = [t for t, compute, _ in rows if compute <= budget]
        if not within:
            cheapest = min(c for _, c, _ in rows)
            raise ConfigError(f"budget {budget:.2f} is below the cheapest the gate reaches ({cheapest:.2f})")
        return max(within)

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "features": list(FEATURES), "exit_layers": list(self.exit_layers),
                "blank_id": self.blank_id, "mean": self.mean, "std": self.std, "weight": self.weight,
                "bias": self.bias, "fingerprint": self.fingerprint, "label": self.label,
                "calibration": {int(k): [list(r) for r in v] for k, v in self.calibration.items()},
                "info": dict(self.info)}

    @classmethod
    def from_dict(cls, data: dict) -> "ExitGate":
        if data.get("format_version") != FORMAT_VERSION or list(data.get("features", [])) != list(FEATURES):
            raise ConfigError("gate file of another format or feature set; retrain it (`asr-ee train-gate`)")
        return cls(list(data["exit_layers"]), int(data["blank_id"]), data["mean"], data["std"], data["weight"],
                   data["bias"], str(data["fingerprint"]), str(data["label"]),
                   {int(k): [tuple(r) for r in v] for k, v in data["calibration"].items()}, dict(data["info"]))

    def save(self, path: str | Path) -> None:
        torch.save(self.to_dict(), Path(path))


def load_gate(path: str | Path, encoder: torch.nn.Module | None = None) -> ExitGate:
    """Read a gate; with ``encoder``, check that it was trained on that model's weights."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no exit gate at {path}; train one with `asr-ee train-gate --model MODEL --cuts DEV`")
    gate = ExitGate.from_dict(torch.load(path, map_location="cpu", weights_only=True))
    if encoder is not None:
        if list(encoder.cfg.exit_layers) != gate.exit_layers or model_fingerprint(encoder) != gate.fingerprint:
            raise ConfigError(f"the exit gate {path} was trained on another model; retrain it "
                              "(`asr-ee train-gate`)")
    return gate


def fit_exit(features: torch.Tensor, labels: torch.Tensor, l2: float = 1e-3, steps: int = 200
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logistic regression of ``labels`` (N,) on ``features`` (N, F), L2-regularized, by L-BFGS.
    Returns mean, std (the standardization), weight (F,) and bias ()."""
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


def fit_gate(features: torch.Tensor, labels: torch.Tensor, *, exit_layers: Sequence[int], blank_id: int,
             fingerprint: str, l2: float = 1e-3) -> ExitGate:
    """One logistic regression per exit on (N, K-1, F) chunk features and (N, K-1) labels
    (:func:`chunk_examples` stacked)."""
    fits = [fit_exit(features[:, k], labels[:, k], l2=l2) for k in range(features.size(1))]
    mean, std, weight, bias = (torch.stack([f[i] for f in fits]) for i in range(4))
    return ExitGate(list(exit_layers), blank_id, mean, std, weight, bias, fingerprint)


def first_exits(probabilities: torch.Tensor, threshold: float, top: int) -> torch.Tensor:
    """(N, K-1) gate probabilities -> (N,) the exit each chunk stops at: the first whose probability
    is >= ``threshold``, at most ``top`` (the last exit, or a ceiling, always stops)."""
    accepted = torch.cat([probabilities >= threshold, torch.ones(probabilities.size(0), 1, dtype=torch.bool)], 1)
    return accepted.int().argmax(1).clamp(max=top)


def calibrate(probabilities: Sequence[torch.Tensor], frames: Sequence[Sequence[int]], exit_fractions: Sequence[float],
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
