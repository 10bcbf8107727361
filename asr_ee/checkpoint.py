"""Checkpoint files: atomic writes, listing, averaging, and loading a model for inference.

A training checkpoint holds ``encoder_config`` (the arguments that rebuild the model), ``model``
and the optimizer/sampler/RNG state. An exported model (``export_model``) holds only the config,
the weights (optionally float16, to ship small) and the tokenizer's bytes, so one file is a model.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from asr_ee.config import CheckpointError, ConfigError, from_dict
from asr_ee.models import EarlyExitEncoder, EncoderConfig, build_encoder

__all__ = ["atomic_save", "remove_partial_saves", "load_checkpoint", "list_checkpoints", "checkpoint_step",
           "average_checkpoints", "export_model", "load_weights", "load_model", "CheckpointError"]


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over ``path``: a run
    killed mid-write leaves the previous checkpoint intact and never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_partial_saves(folder: str | Path) -> list[Path]:
    """Delete the temporary files :func:`atomic_save` leaves in ``folder`` when the process is
    killed mid-write (``.<name>.<random>.tmp``); returns them. Call it before anything saves there."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    partial = sorted(p for p in folder.glob(".*.tmp") if p.is_file())
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({e}); it may be truncated: use an "
                              "earlier checkpoint") from e
    if not isinstance(state, dict):  # e.g. torch.save(tensor)
        raise CheckpointError(f"{path} is not an asr_ee checkpoint (it holds a {type(state).__name__}, "
                              "not a dict with encoder_config and model)")
    return state


def checkpoint_step(path: Path) -> int:
    """The training step in a checkpoint's name (``step-00001000.pt``, ``epoch-0002-step-00001000.pt``)."""
    m = re.search(r"step-(\d+)", path.name)
    if m is None:
        raise CheckpointError(f"{path.name} does not name a step (step-N.pt or epoch-E-step-N.pt)")
    return int(m.group(1))


def list_checkpoints(ckpt_dir: str | Path, prefix: str = "") -> list[Path]:
    """Checkpoints in ``ckpt_dir`` oldest first, by the step in their names; of two files for one
    step (an epoch that ended on a checkpoint step) the later written is kept."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    by_step: dict[int, Path] = {}
    for path in sorted(ckpt_dir.glob(f"{prefix}*.pt"), key=lambda p: p.stat().st_mtime_ns):
        if not path.name.startswith(".") and re.search(r"step-\d+", path.name):
            by_step[checkpoint_step(path)] = path
    return [by_step[k] for k in sorted(by_step)]


def average_checkpoints(paths: list[Path]) -> dict:
    """Element-wise mean of the model weights of ``paths`` (integer buffers taken from the last)."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    states = [load_checkpoint(p) for p in paths]
    avg = {}
    for key, value in states[-1]["model"].items():
        if value.is_floating_point():
            avg[key] = sum(s["model"][key].double() for s in states).div(len(states)).to(value.dtype)
        else:
            avg[key] = value
    out = dict(states[-1])
    out["model"] = avg
    out["averaged_from"] = [str(p) for p in paths]
    return out


def export_model(checkpoint: dict, tokenizer_path: str | Path, out_path: str | Path, half: bool = True,
                 extra: dict | None = None) -> None:
    """Write a self-contained inference model: config, weights, tokenizer."""
    weights = {k: (v.half() if half and v.is_floating_point() else v) for k, v in checkpoint["model"].items()}
    atomic_save({"format": "asr_ee-model-v1", "encoder_config": checkpoint["encoder_config"], "model": weights,
                 "tokenizer": Path(tokenizer_path).read_bytes(), "info": extra or {}}, out_path)


def load_weights(path: str | Path) -> tuple[dict, dict]:
    """The encoder config and float32 weights of a training checkpoint or an exported model."""
    return _weights(load_checkpoint(path), path)


def _weights(state: dict, path: str | Path) -> tuple[dict, dict]:
    if "encoder_config" not in state or "model" not in state:
        raise CheckpointError(f"{path} is not an asr_ee checkpoint (no encoder_config/model)")
    if not isinstance(state["model"], dict) or not isinstance(state["encoder_config"], dict):
        raise CheckpointError(f"{path} is not an asr_ee checkpoint (its model or encoder_config is not a dict)")
    return state["encoder_config"], {k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()}


def load_model(path: str | Path) -> tuple[EarlyExitEncoder, bytes | None, dict]:
    """Load a training checkpoint or an exported model for inference (float32, eval mode).

    Returns the encoder, the tokenizer model bytes (None for training checkpoints) and the
    checkpoint's ``info`` dict.
    """
    state = load_checkpoint(path)
    encoder_config, weights = _weights(state, path)
    try:
        model = build_encoder(from_dict(EncoderConfig, encoder_config))
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{path}: its encoder settings are not valid ({e})") from e
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:  # missing, unexpected or mis-shaped weights
        problems = str(e).split("\n\t", 1)[-1].replace("\n\t", "; ")
        raise CheckpointError(f"{path}: its weights do not match its encoder settings "
                              f"({encoder_config.get('arch', '?')}, {encoder_config.get('num_layers', '?')} layers, "
                              f"d_model {encoder_config.get('d_model', '?')}): {problems[:500]}") from e
    return model.eval(), state.get("tokenizer"), state.get("info", {})



