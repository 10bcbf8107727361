"""What an exported folder holds, shared by the exporter and the runtime (numpy only, no torch):
the metadata file's name and format tag, the graphs' state names and the rotary tables the runtime
feeds them."""

from __future__ import annotations

import numpy as np

__all__ = ["FORMAT", "METADATA_FILE", "STATE_FIELDS", "state_names", "rotary_tables_np"]

FORMAT = "asr_ee.onnx.v1"
METADATA_FILE = "model.json"
STATE_FIELDS = ("key", "value", "conv")


def state_names(kind: str, index: int) -> list[str]:
    """Input names of one layer's (``kind`` = ``layer``) or branch's (``branch``) state:
    ``layer3.key``, ``layer3.value``, ``layer3.conv``; the outputs add ``new.`` in front."""
    return [f"{kind}{index}.{name}" for name in STATE_FIELDS]


def rotary_tables_np(positions: np.ndarray, head_dim: int) -> np.ndarray:
    """(T, Dh/2, 2) cos/sin tables of absolute frame positions, computed in float64 as
    :func:`asr_ee.models.conformer.rotary_tables` does (the graphs hold no positions)."""
    inv_freq = 1.0 / (10000.0 ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    angles = positions.astype(np.float64)[:, None] * inv_freq[None, :]
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1).astype(np.float32)
