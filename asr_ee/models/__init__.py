"""Early-exit encoders. Builder: :func:`build_encoder`, which picks the class from ``cfg.arch``.

A new architecture is a module here with an :class:`EarlyExitEncoder` subclass, its entry in
:data:`ARCHITECTURES` and its name in ``EncoderConfig.arch`` (models/config.py).

The torch classes (``EarlyExitEncoder``, ``SplitformerEncoder``, ``ARCHITECTURES``) are imported on
first use: the configuration, the streaming state (:mod:`asr_ee.models.state`), the frame geometry
and the cost model import no torch, so the ONNX runtime can use them in an install without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from asr_ee.config import ConfigError
from asr_ee.models.config import PRESETS, EncoderConfig, load_encoder_config, preset
from asr_ee.models.state import ChunkOutput, EncoderState, SkipPolicy

if TYPE_CHECKING:
    from asr_ee.models.encoder import EarlyExitEncoder
    from asr_ee.models.splitformer import SplitformerEncoder

__all__ = ["EncoderConfig", "PRESETS", "preset", "load_encoder_config", "EarlyExitEncoder", "SplitformerEncoder",
           "EncoderState", "ChunkOutput", "SkipPolicy", "ARCHITECTURES", "build_encoder"]

_TORCH_CLASSES = {"EarlyExitEncoder": "encoder", "SplitformerEncoder": "splitformer"}


def _architectures() -> dict[str, type["EarlyExitEncoder"]]:
    from asr_ee.models.encoder import EarlyExitEncoder
    from asr_ee.models.splitformer import SplitformerEncoder

    return {"conformer": EarlyExitEncoder, "splitformer": SplitformerEncoder}


def __getattr__(name: str) -> Any:
    if name in _TORCH_CLASSES:
        return getattr(importlib.import_module(f"asr_ee.models.{_TORCH_CLASSES[name]}"), name)
    if name == "ARCHITECTURES":
        return _architectures()
    raise AttributeError(f"module 'asr_ee.models' has no attribute {name!r}")


def build_encoder(cfg: EncoderConfig) -> "EarlyExitEncoder":
    """The encoder ``cfg.arch`` names: the EE-Conformer or the Splitformer."""
    architectures = _architectures()
    if cfg.arch not in architectures:
        raise ConfigError(f"unknown encoder arch {cfg.arch!r}; choose from {sorted(architectures)}")
    return architectures[cfg.arch](cfg)
