"""Which model a learned exit gate belongs to: a short hash of the model's weights.

A gate is trained on one model's outputs and is wrong for any other, so its file records the
fingerprint of the model it was trained on and loading checks it (:func:`asr_ee.exits.gate.load_gate`).
A torch model's fingerprint is computed from its weights (:func:`model_fingerprint`); an exported
ONNX folder cannot be hashed the same way (its graphs are traced, maybe quantized), so ``asr-ee
export`` records the torch model's fingerprint in the folder's ``model.json`` and
:func:`encoder_fingerprint` reads it there. Imports no torch at module level: the ONNX runtime
checks its gate without torch.
"""

from __future__ import annotations

import hashlib
from typing import Any

from asr_ee.config import ConfigError

__all__ = ["FINGERPRINT_KEY", "model_fingerprint", "encoder_fingerprint"]

FINGERPRINT_KEY = "model_fingerprint"  # in an exported folder's model.json


def model_fingerprint(module: Any) -> str:
    """A short hash of a torch model's weights (names and float32 values, in name order)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).to(torch.float32).numpy().tobytes())
    return digest.hexdigest()[:16]


def encoder_fingerprint(encoder: Any) -> str:
    """The fingerprint of the model behind ``encoder``: a torch ``EarlyExitEncoder``'s weights, or
    for an exported folder's ``OnnxEncoder`` the one ``asr-ee export`` recorded in its metadata (an
    export written before exports recorded it is a ConfigError: re-export it)."""
    metadata = getattr(encoder, "metadata", None)
    if getattr(encoder, "streams_numpy", False) and isinstance(metadata, dict):
        recorded = metadata.get(FINGERPRINT_KEY)
        if not recorded:
            raise ConfigError("this ONNX export records no model fingerprint (written before exports carried "
                              "the exit gate): re-export it with `asr-ee export`")
        return str(recorded)
    return model_fingerprint(encoder)
