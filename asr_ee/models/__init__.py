"""Early-exit encoders. Builders: :func:`build_encoder`."""

from asr_ee.models.config import PRESETS, EncoderConfig, load_encoder_config, preset
from asr_ee.models.encoder import ChunkOutput, EarlyExitEncoder, EncoderState, SkipPolicy

__all__ = ["EncoderConfig", "PRESETS", "preset", "load_encoder_config", "EarlyExitEncoder", "EncoderState",
           "ChunkOutput", "SkipPolicy", "build_encoder"]


def build_encoder(cfg: EncoderConfig) -> EarlyExitEncoder:
    """EE-Conformer or Splitformer, as ``cfg.arch`` says."""
    return EarlyExitEncoder(cfg)
