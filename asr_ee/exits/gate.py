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

This module is the gate's inference side and imports no torch: features, probabilities, the
budget's threshold and the file work on numpy, so the ONNX runtime runs the gate as the torch
backend does. Training (logistic regressions by L-BFGS, the compute calibration) is
:mod:`asr_ee.exits.gate_fit`.

The gate is a JSON file beside the model (:func:`gate_path`, ``model.gate.json`` for ``model.pt``;
``asr-ee export`` copies it into the exported folder beside ``model.json``) with the fingerprint of
the model's weights (:mod:`asr_ee.exits.fingerprint`), so a gate trained for another model is
refused. Gates written before were torch files (``model.gate.pt``): they are still read where torch
is installed, with a note; ``python scripts/convert_gate.py FILE.gate.pt`` converts one. The gate
also carries its calibration on the data it was trained on: for each threshold, the mean compute
of the chunks it would stop, which turns a compute budget into a threshold
(:meth:`ExitGate.threshold_for_budget`).

Shapes: N chunks, K exits, F features, T frames, V vocabulary, D model dim.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from asr_ee.config import ConfigError
from asr_ee.exits.criteria import ExitView, as_array
from asr_ee.exits.fingerprint import encoder_fingerprint
from asr_ee.exits.gate_labels import DEFAULT_PATH_MARGIN, LabelKind, chunk_labels

__all__ = ["FEATURES", "CALIBRATION_THRESHOLDS", "ExitGate", "gate_features", "chunk_views", "chunk_examples",
           "gate_path", "legacy_gate_path", "find_gate", "load_gate", "check_gate", "read_legacy_gate",
           "convert_legacy_gate"]

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


def gate_features(view: ExitView, history: Sequence[ExitView], blank_id: int) -> np.ndarray:
    """(F,) float32: the features of this exit (``view``) given the earlier exits of the same chunk."""
    entropy, margin, blank_share, min_conf = _stats(view, blank_id)
    if history:
        previous = history[-1]
        p_entropy, p_margin, p_blank, _ = _stats(previous, blank_id)
        agree = float((view.argmax == previous.argmax).mean()) if view.argmax.size else 1.0
        changes = [entropy - p_entropy, margin - p_margin, blank_share - p_blank, agree,
                   _hidden_change(view, previous)]
    else:
        changes = [0.0, 0.0, 0.0, 0.0, 0.0]
    return np.array([entropy, margin, blank_share, min_conf, *changes], np.float32)


def chunk_views(exit_log_probs: Sequence[Any], hidden: Sequence[Any] | None, start: int, end: int) -> list[ExitView]:
    """Per exit, what a criterion sees of frames [start, end): exit_log_probs [(T, V)], hidden
    [(T, D)] (numpy arrays or tensors)."""
    return [ExitView(lp[start:end], None if hidden is None else hidden[k][start:end])
            for k, lp in enumerate(exit_log_probs)]


def chunk_examples(views: Sequence[ExitView], blank_id: int, *, reference: int | None = None,
                   label: LabelKind = "frames", path: np.ndarray | None = None,
                   margin: float = DEFAULT_PATH_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """One chunk's training examples: (K-1, F) features of exits 0 .. K-2 (each given the exits
    before it, as :class:`~asr_ee.exits.criteria.ExitSelector` sees them) and (K-1,) labels, 1 where
    the exit matches exit ``reference`` (default the last) in the sense of ``label``
    (:func:`~asr_ee.exits.gate_labels.chunk_labels`; ``frames``: every frame's best token, the chunk
    oracle's test; ``path``: the reference's decoded path through the chunk, ``path`` given, scored
    within ``margin``)."""
    features = np.stack([gate_features(views[k], views[:k], blank_id) for k in range(len(views) - 1)])
    labels = np.array(chunk_labels(views, blank_id, reference=reference, kind=label, path=path, margin=margin),
                      np.float32)
    return features, labels


def gate_path(model_path: str | Path) -> Path:
    """Where the gate of the model at ``model_path`` lives: ``<stem>.gate.json`` beside it (for an
    exported folder's ``model.json``: ``model.gate.json`` in the folder)."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.gate.json")


def legacy_gate_path(model_path: str | Path) -> Path:
    """Where gates were written before they were JSON: ``<stem>.gate.pt`` (a torch file)."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.gate.pt")


def find_gate(model_path: str | Path) -> Path:
    """The gate file of a model: :func:`gate_path`, else a legacy ``.gate.pt`` where only that one
    exists (:func:`load_gate` reads it with torch, with a note)."""
    new, legacy = gate_path(model_path), legacy_gate_path(model_path)
    return legacy if not new.is_file() and legacy.is_file() else new


def _array(x: Any) -> np.ndarray:
    return np.ascontiguousarray(as_array(x), dtype=np.float32)


@dataclass
class ExitGate:
    """Per-exit logistic regressions (exits 0 .. K-2; the last exit always stops). Arrays are
    float32 numpy (tensors given are read as numpy).

    Attributes:
        exit_layers: the model's exit layers.
        blank_id: the CTC blank's token id.
        mean / std: (K-1, F) feature standardization per exit.
        weight: (K-1, F), bias: (K-1,) the regressions on standardized features.
        fingerprint: :func:`~asr_ee.exits.fingerprint.model_fingerprint` of the model it was trained on.
        label: what "matches" meant in training (``frames``: every frame's best token equals the
            last exit's on the chunk; ``tokens@10``: the same best-path tokens as exit layer 10).
        calibration: per top exit index (the deepest exit a chunk may reach), rows
            ``(threshold, compute fraction, mean exit layer)`` measured on the training data.
        info: free-form facts (data, chunking, accuracy).
    """

    exit_layers: list[int]
    blank_id: int
    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    fingerprint: str
    label: str = "frames"
    calibration: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mean, self.std, self.weight, self.bias = (_array(a) for a in (self.mean, self.std, self.weight, self.bias))

    def probabilities(self, exit_index: int, features: Any) -> np.ndarray:
        """(N, F) features of exit ``exit_index`` -> (N,) probabilities that it matches the last exit."""
        features = _array(features)
        if exit_index >= self.weight.shape[0]:
            return np.ones(features.shape[0], np.float32)
        z = (features - self.mean[exit_index]) / self.std[exit_index]
        logits = z @ self.weight[exit_index] + self.bias[exit_index]
        with np.errstate(over="ignore"):  # exp(-logit) overflows to inf for a very negative logit: 0, as it should be
            return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def value(self, exit_index: int, view: ExitView, history: Sequence[ExitView]) -> float:
        """The criterion value: probability that ``view`` (exit ``exit_index``) matches the last exit."""
        if exit_index >= self.weight.shape[0]:
            return 1.0
        return float(self.probabilities(exit_index, gate_features(view, history, self.blank_id)[None])[0])

    @property
    def calibrated_hold(self) -> int:
        """The hold (``hold_chunks``) the calibration's compute assumed (0 for gates from before holds)."""
        return int(self.info.get("hold_chunks", 0))

    def check_hold(self, hold: int) -> None:
        """A ConfigError unless the calibration assumed ``hold``: its budgets would be wrong."""
        if hold != self.calibrated_hold:
            raise ConfigError(f"the gate's compute calibration assumes hold_chunks {self.calibrated_hold}, the stream "
                              f"holds {hold}: recalibrate it, `asr-ee train-gate --hold-chunks {hold}`")

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
        """JSON-ready: arrays as nested lists of the float32 values (exact: float32 -> float64 ->
        decimal -> float32 gives the same bits back)."""
        return {"format_version": FORMAT_VERSION, "features": list(FEATURES), "exit_layers": list(self.exit_layers),
                "blank_id": self.blank_id, "fingerprint": self.fingerprint, "label": self.label,
                **{name: getattr(self, name).astype(np.float64).tolist() for name in ("mean", "std", "weight", "bias")},
                "calibration": {str(int(k)): [[float(x) for x in r] for r in v] for k, v in self.calibration.items()},
                "info": dict(self.info)}

    @classmethod
    def from_dict(cls, data: dict) -> "ExitGate":
        """From :meth:`to_dict`'s dict (lists), or a legacy torch file's (tensors)."""
        if data.get("format_version") != FORMAT_VERSION or list(data.get("features", [])) != list(FEATURES):
            raise ConfigError("gate file of another format or feature set; retrain it (`asr-ee train-gate`)")
        return cls(list(data["exit_layers"]), int(data["blank_id"]), data["mean"], data["std"], data["weight"],
                   data["bias"], str(data["fingerprint"]), str(data["label"]),
                   {int(k): [tuple(float(x) for x in r) for r in v] for k, v in data["calibration"].items()},
                   dict(data["info"]))

    def save(self, path: str | Path) -> None:
        """Write the gate as JSON (whatever the file's name ends with)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(path)


def read_legacy_gate(path: Path) -> dict:
    """A gate file written with ``torch.save`` (before gates were JSON): read with torch."""
    try:
        import torch
    except ImportError as e:
        raise ConfigError(f"{path} is a torch gate file (the format before JSON) and torch is not installed: "
                          f"convert it where torch is, `python scripts/convert_gate.py {path}`") from e
    return torch.load(path, map_location="cpu", weights_only=True)


def load_gate(path: str | Path, encoder: Any = None) -> ExitGate:
    """Read a gate (JSON, or a legacy torch file with a note on stderr); with ``encoder`` (a torch
    ``EarlyExitEncoder`` or an exported folder's ``OnnxEncoder``), check that it was trained on
    that model's weights (:func:`check_gate`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no exit gate at {path}; train one with `asr-ee train-gate --model MODEL --cuts DEV`")
    raw = path.read_bytes()
    if raw.lstrip()[:1] == b"{":
        data = json.loads(raw)
    else:
        data = read_legacy_gate(path)
        print(f"note: {path} is a legacy torch gate file; convert it to JSON, which the runtime without torch "
              f"reads: python scripts/convert_gate.py {path}", file=sys.stderr)
    gate = ExitGate.from_dict(data)
    if encoder is not None:
        check_gate(gate, encoder, path)
    return gate


def check_gate(gate: ExitGate, encoder: Any, where: str | Path = "the exit gate") -> None:
    """ConfigError unless ``gate`` was trained on the model behind ``encoder`` (same exit layers and
    weight fingerprint; an exported folder's fingerprint is the one its export recorded)."""
    if list(encoder.cfg.exit_layers) != gate.exit_layers or encoder_fingerprint(encoder) != gate.fingerprint:
        raise ConfigError(f"the exit gate {where} was trained on another model; retrain it (`asr-ee train-gate`)")


def convert_legacy_gate(path: str | Path, output: str | Path | None = None) -> Path:
    """Write a legacy ``.gate.pt`` as JSON (default: ``<stem>.json`` beside it, ``model.gate.json``
    for ``model.gate.pt``); the arrays are the same float32 values. Returns the file written."""
    path = Path(path)
    gate = ExitGate.from_dict(read_legacy_gate(path))
    output = Path(output) if output is not None else path.with_suffix(".json")
    gate.save(output)
    return output
