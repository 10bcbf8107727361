"""The encoder surface the recognizer drives, and the backends that provide it.

:class:`~asr_ee.streaming.recognizer.Recognizer` runs every chunk through ``infer`` and shares
everything else (exit criteria, load controller, endpointing, decoding, the trace) between
backends: ``torch`` (:class:`~asr_ee.models.encoder.EarlyExitEncoder`, eager PyTorch, behind
:class:`~asr_ee.runtime.torch_encoder.TorchStreamingEncoder`) and ``onnx``
(:class:`~asr_ee.runtime.onnx_encoder.OnnxEncoder`, the exported graphs on onnxruntime). At this
surface features, posteriors and hidden states are numpy arrays, so the recognizer needs no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from asr_ee.models.config import EncoderConfig
    from asr_ee.models.state import ChunkOutput, EncoderState, ExitDecision, SkipPolicy
    from asr_ee.pretrained import Pretrained

__all__ = ["BACKENDS", "StreamingEncoder", "load_model_for_backend", "streaming_encoder"]

BACKENDS = ("torch", "onnx")


@runtime_checkable
class StreamingEncoder(Protocol):
    """What a backend's encoder offers the recognizer: ``EarlyExitEncoder.infer``'s contract on
    numpy arrays (feats (B, N, F) in; ``decide`` called with numpy posteriors and hidden states;
    ``ChunkOutput.log_probs`` numpy), and the front end its streams use
    (:data:`asr_ee.streaming.frontend.FRONT_ENDS`)."""

    cfg: "EncoderConfig"
    frontend: str

    @property
    def num_exits(self) -> int: ...

    def check_chunk_frames(self, chunk_frames: int) -> None:
        """Raise ConfigError when the model cannot stream chunks of this size."""

    def initial_state(self, batch_size: int = 1, device: Any = None) -> "EncoderState": ...

    def infer(self, feats: "np.ndarray", state: "EncoderState", *, left_context_frames: int | None,
              decide: "ExitDecision | None" = None, max_exit: int | None = None,
              skip_policy: "SkipPolicy" = ...) -> "ChunkOutput": ...


def onnx_runtime_available() -> bool:
    """Whether the ONNX runtime's packages (onnxruntime, kaldi-native-fbank) are installed."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "kaldi_native_fbank"))


def shipped_onnx_dir() -> Path:
    """The shipped model's ONNX export (``exp/small/onnx/``, ``asr_ee/shipped/onnx/`` in a wheel)."""
    from asr_ee.pretrained import SHIPPED_DIR

    return SHIPPED_DIR / "onnx"


def resolve_backend(model: str | Path | None, backend: str | None) -> tuple[str, str | Path | None, str | None]:
    """The backend and model a request means, and a note for the user where a default was chosen:
    ``backend`` None picks ``onnx`` for an exported folder, ``torch`` for a model file, and for the
    shipped model (``model`` None) its ONNX export when onnxruntime is installed, else torch."""
    from asr_ee.config import ConfigError

    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if model is not None:
        from asr_ee.runtime.onnx_encoder import is_onnx_model_dir

        return backend or ("onnx" if is_onnx_model_dir(model) else "torch"), model, None
    shipped = shipped_onnx_dir()
    if backend == "onnx":
        return "onnx", shipped, None
    if backend == "torch":
        return "torch", None, None
    if not (shipped / "model.json").is_file():
        return "torch", None, None
    if not onnx_runtime_available():
        return "torch", None, ("note: onnxruntime or kaldi-native-fbank is not installed: the shipped model runs "
                               "in torch (pip install asr_ee installs the ONNX runtime)")
    if _stale(shipped):
        return "torch", None, (f"note: {shipped} was exported from another model file than the shipped one: the "
                               "shipped model runs in torch (bash scripts/export_shipped_onnx.sh re-exports it)")
    return "onnx", shipped, None


def _stale(folder: Path) -> bool:
    """Whether an export's source file (its sha256 in model.json) is not the shipped model file."""
    import hashlib
    import json

    from asr_ee.pretrained import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        return False  # a runtime install may ship the export alone
    source = json.loads((folder / "model.json").read_text()).get("source") or {}
    return source.get("sha256") != hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()


def load_model_for_backend(model: str | Path | None, backend: str | None = None, *, threads: int = 1) -> "Pretrained":
    """The model the recognizer runs: a model file through torch, or a folder written by ``asr-ee
    export`` through onnxruntime; ``model`` None is the shipped model and ``backend`` None picks as
    :func:`resolve_backend` says. A folder that is not an export is a ConfigError."""
    from asr_ee.config import ConfigError

    backend, model, _ = resolve_backend(model, backend)
    if backend == "torch":
        from asr_ee.pretrained import load_pretrained

        return load_pretrained(model)
    from asr_ee.runtime.onnx_encoder import is_onnx_model_dir, load_onnx_model

    if model is None or not is_onnx_model_dir(model):
        raise ConfigError(f"--backend onnx needs --model DIR, a folder written by `asr-ee export` "
                          f"(got {model})")
    return load_onnx_model(model, threads=threads)


def streaming_encoder(encoder: Any) -> StreamingEncoder:
    """The recognizer's view of a model's encoder: one that streams numpy already (``OnnxEncoder``)
    as it is, a torch ``EarlyExitEncoder`` behind :class:`~asr_ee.runtime.torch_encoder.TorchStreamingEncoder`."""
    if getattr(encoder, "streams_numpy", False):
        return encoder
    from asr_ee.runtime.torch_encoder import TorchStreamingEncoder

    return TorchStreamingEncoder(encoder)
