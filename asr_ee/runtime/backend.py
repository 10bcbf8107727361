"""The encoder surface the recognizer drives, and the backends that provide it.

:class:`~asr_ee.streaming.recognizer.Recognizer` runs every chunk through ``infer`` and shares
everything else (exit criteria, load controller, endpointing, decoding, the trace) between
backends: ``torch`` (:class:`~asr_ee.models.encoder.EarlyExitEncoder`, eager PyTorch) and ``onnx``
(:class:`~asr_ee.runtime.onnx_encoder.OnnxEncoder`, the exported graphs on onnxruntime).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from asr_ee.models.config import EncoderConfig
    from asr_ee.models.encoder import ChunkOutput, EncoderState, ExitDecision, SkipPolicy
    from asr_ee.pretrained import Pretrained

__all__ = ["BACKENDS", "StreamingEncoder", "load_model_for_backend"]

BACKENDS = ("torch", "onnx")


@runtime_checkable
class StreamingEncoder(Protocol):
    """What a backend's encoder offers the recognizer (``EarlyExitEncoder.infer``'s contract)."""

    cfg: "EncoderConfig"

    @property
    def num_exits(self) -> int: ...

    def check_chunk_frames(self, chunk_frames: int) -> None:
        """Raise ConfigError when the model cannot stream chunks of this size."""

    def initial_state(self, batch_size: int = 1, device: Any = None) -> "EncoderState": ...

    def infer(self, feats: Any, state: "EncoderState", *, left_context_frames: int | None,
              decide: "ExitDecision | None" = None, max_exit: int | None = None,
              skip_policy: "SkipPolicy" = ...) -> "ChunkOutput": ...


def load_model_for_backend(model: str | Path | None, backend: str = "torch", *, threads: int = 1) -> "Pretrained":
    """The model the recognizer runs: a model file through torch (None: the shipped model), or a
    folder written by ``asr-ee export`` through onnxruntime. A missing folder is a ConfigError."""
    from asr_ee.config import ConfigError

    if backend == "torch":
        from asr_ee.pretrained import load_pretrained

        return load_pretrained(model)
    if backend == "onnx":
        from asr_ee.runtime.onnx_encoder import is_onnx_model_dir, load_onnx_model

        if model is None or not is_onnx_model_dir(model):
            raise ConfigError(f"--backend onnx needs --model DIR, a folder written by `asr-ee export` "
                              f"(got {model})")
        return load_onnx_model(model, threads=threads)
    raise ConfigError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
