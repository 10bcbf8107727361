"""Early-exit encoders. Builder: :func:`build_encoder`, which picks the class from ``cfg.arch``.

A new architecture is a module here with an :class:`EarlyExitEncoder` subclass, its entry in
:data:`ARCHITECTURES` and its name in ``EncoderConfig.arch`` (models/config.py).
"""

from asr_ee.config import ConfigError
from asr_ee.models.config import PRESETS, EncoderConfig, load_encoder_config, preset
from asr_ee.models.encoder import ChunkOutput, EarlyExitEncoder, EncoderState, SkipPolicy
from asr_ee.models.splitformer import SplitformerEncoder

__all__ = ["EncoderConfig", "PRESETS", "preset", "load_encoder_config", "EarlyExitEncoder", "SplitformerEncoder",
           "EncoderState", "ChunkOutput", "SkipPolicy", "ARCHITECTURES", "build_encoder"]

ARCHITECTURES: dict[str, type[EarlyExitEncoder]] = {"conformer": EarlyExitEncoder, "splitformer": SplitformerEncoder}


def build_encoder(cfg: EncoderConfig) -> EarlyExitEncoder:
    """The encoder ``cfg.arch`` names: the EE-Conformer or the Splitformer."""
    if cfg.arch not in ARCHITECTURES:
        raise ConfigError(f"unknown encoder arch {cfg.arch!r}; choose from {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[cfg.arch](cfg)
