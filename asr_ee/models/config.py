"""Encoder configuration and presets.

A checkpoint stores ``to_dict(EncoderConfig)`` so it can rebuild its model alone (nanoGPT style).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from asr_ee.config import ConfigError, from_dict

__all__ = ["EncoderConfig", "PRESETS", "preset", "load_encoder_config", "weight_layout_differences"]


@dataclass
class EncoderConfig:
    """Early-exit Conformer / Splitformer encoder.

    Attributes:
        arch: ``conformer`` (EE baseline) or ``splitformer`` (parallel 2x-downsampled branches).
        num_mel_bins: input feature dimension.
        d_model: model dimension D.
        num_layers: number of Conformer layers.
        num_heads: attention heads.
        ffn_dim: feed-forward hidden size.
        conv_kernel: depthwise convolution kernel size.
        dropout: dropout inside the layers.
        exit_layers: 1-based layer indices followed by a CTC exit; must end with ``num_layers``.
        split_exit_layers: Splitformer only: exit layers whose block gets a parallel branch
            (default: the first and the last exit).
        vocab_size: CTC output size (blank = 0).
        subsampling_channels: channels of the 4x Conv2d subsampling.
        causal: causal depthwise convolution (required for streaming).
        positional: ``rope`` (rotary embeddings on queries/keys) or ``none``.
        conv_norm: normalization after the depthwise conv (``batch`` as in torchaudio, or ``layer``).
    """

    arch: Literal["conformer", "splitformer"] = "conformer"
    num_mel_bins: int = 80
    d_model: int = 256
    num_layers: int = 12
    num_heads: int = 4
    ffn_dim: int = 2048
    conv_kernel: int = 31
    dropout: float = 0.1
    exit_layers: list[int] = field(default_factory=lambda: [2, 4, 6, 8, 10, 12])
    split_exit_layers: list[int] | None = None
    vocab_size: int = 256
    subsampling_channels: int = 64
    causal: bool = True
    positional: Literal["rope", "none"] = "rope"
    conv_norm: Literal["batch", "layer"] = "batch"

    def __post_init__(self) -> None:
        if self.d_model % self.num_heads:
            raise ConfigError(f"d_model {self.d_model} not divisible by num_heads {self.num_heads}")
        exits = self.exit_layers
        if not exits or exits != sorted(set(exits)) or exits[0] < 1 or exits[-1] != self.num_layers:
            raise ConfigError(f"exit_layers {exits} must be increasing, >= 1 and end with num_layers "
                              f"({self.num_layers})")
        if self.arch == "splitformer":
            split = self.resolved_split_exit_layers()
            if not set(split) <= set(exits):
                raise ConfigError(f"split_exit_layers {split} must be a subset of exit_layers {exits}")
        elif self.split_exit_layers:
            raise ConfigError("split_exit_layers is only valid with arch: splitformer")

    def resolved_split_exit_layers(self) -> list[int]:
        if self.arch != "splitformer":
            return []
        if self.split_exit_layers is None:
            return sorted({self.exit_layers[0], self.exit_layers[-1]})
        return list(self.split_exit_layers)


PRESETS: dict[str, EncoderConfig] = {
    # The EE-Conformer of the early-exit papers: 12 layers, d 256, exits every 2 layers.
    "paper": EncoderConfig(),
    "paper-splitformer": EncoderConfig(arch="splitformer"),
    # Sized for training from scratch on a 2-core CPU in a few hours.
    "small": EncoderConfig(d_model=144, num_layers=12, num_heads=4, ffn_dim=576, conv_kernel=15,
                           subsampling_channels=64, dropout=0.1),
    "small-splitformer": EncoderConfig(arch="splitformer", d_model=144, num_layers=12, num_heads=4,
                                       ffn_dim=576, conv_kernel=15, subsampling_channels=64),
    # For tests: a few thousand parameters, runs in milliseconds.
    "tiny": EncoderConfig(d_model=32, num_layers=4, num_heads=2, ffn_dim=64, conv_kernel=5,
                          exit_layers=[2, 4], vocab_size=32, subsampling_channels=8, dropout=0.0),
    "tiny-splitformer": EncoderConfig(arch="splitformer", d_model=32, num_layers=4, num_heads=2,
                                      ffn_dim=64, conv_kernel=5, exit_layers=[2, 4], vocab_size=32,
                                      subsampling_channels=8, dropout=0.0),
}


def preset(name: str, **overrides: object) -> EncoderConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def load_encoder_config(name_or_path: str) -> EncoderConfig:
    """A preset name, or a YAML file holding EncoderConfig keys (or an ``encoder:`` section)."""
    if name_or_path in PRESETS:
        return preset(name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"{name_or_path!r} is neither a preset ({sorted(PRESETS)}) nor a YAML file")
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if "encoder" in data:
        data = data["encoder"]
    return from_dict(EncoderConfig, data, where=str(path))


# settings no weight depends on: two configs that differ only in these hold the same weights
_NOT_IN_WEIGHTS = frozenset({"dropout"})


def weight_layout_differences(a: dict, b: dict) -> list[str]:
    """The fields of two stored encoder configs (``to_dict``) whose difference changes the weights;
    [] when one's weights fit the other (they may differ in the dropout rate: fine-tuning or
    interpolating a model trained with more dropout)."""
    return sorted(k for k in set(a) | set(b) if k not in _NOT_IN_WEIGHTS and a.get(k) != b.get(k))
