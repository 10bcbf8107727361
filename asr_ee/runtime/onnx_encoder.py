"""The early-exit encoder's streaming step on onnxruntime, from a folder ``asr-ee export`` wrote.

:class:`OnnxEncoder` has the surface the recognizer drives (:class:`~asr_ee.runtime.backend.StreamingEncoder`:
``cfg``, ``num_exits``, ``initial_state``, ``infer``) and the same semantics as
:meth:`asr_ee.models.encoder.EarlyExitEncoder.infer`: the subsampling's frame cache, block-by-block
exits with a ``decide`` callback, the ``copy`` policy's cache projection (``fill{b}`` graphs) and the
``recompute`` policy's catch-up of kept chunks. The graphs run on numpy
(:class:`~asr_ee.runtime.onnx_graphs.OnnxGraphs`); the state is the torch path's
:class:`~asr_ee.models.state.EncoderState` holding numpy arrays, so streams stack and unstack for
batching and catch up under ``recompute`` with the same code as with torch. Imports no torch.

Shapes: B batch, N fbank frames, C chunk frames, D model dim, V vocab, H heads, Dh head dim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from asr_ee.config import ConfigError, from_dict
from asr_ee.export.format import METADATA_FILE
from asr_ee.models.config import EncoderConfig
from asr_ee.models.state import ChunkOutput, EncoderState, ExitDecision, LayerState, PendingChunk, SkipPolicy
from asr_ee.pretrained import Pretrained
from asr_ee.runtime.onnx_graphs import Caches, OnnxGraphs

__all__ = ["OnnxEncoder", "load_onnx_model", "is_onnx_model_dir", "DEFAULT_FRONTEND"]

# The streams' front end: kaldi-native-fbank, with or without torch installed, so that a runtime
# install and a full one transcribe alike (asr_ee.streaming.frontend).
DEFAULT_FRONTEND = "kaldi-native-fbank"


def is_onnx_model_dir(path: str | Path | None) -> bool:
    """True for a folder holding an exported model's metadata file."""
    return path is not None and (Path(path) / METADATA_FILE).is_file()


def _zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


def _caches(state: EncoderState) -> Caches:
    """The state's caches, named as the graphs name them."""
    caches = {f"layer{i}": (s.key, s.value, s.conv) for i, s in enumerate(state.layers)}
    caches.update({f"branch{j}": (s.key, s.value, s.conv) for j, s in enumerate(state.branches)})
    return caches


def _store(caches: Caches, state: EncoderState) -> None:
    state.layers = [LayerState(*caches[f"layer{i}"]) for i in range(len(state.layers))]
    state.branches = [LayerState(*caches[f"branch{j}"]) for j in range(len(state.branches))]


class OnnxEncoder:
    """The streaming step of an exported model, with :meth:`EarlyExitEncoder.infer`'s contract on
    numpy arrays (the state holds numpy arrays; imports no torch).

    Args:
        model_dir: the folder ``asr-ee export`` wrote.
        threads: onnxruntime intra-op threads per graph.
        frontend: the streams' fbank front end (None: :data:`DEFAULT_FRONTEND`, no torch; tests
            pass ``lhotse`` to compare with the torch path on identical features).
    """

    streams_numpy = True

    def __init__(self, model_dir: str | Path, *, threads: int = 1, frontend: str | None = None) -> None:
        self.graphs = OnnxGraphs(model_dir, threads=threads)
        self.metadata: dict[str, Any] = self.graphs.metadata
        self.cfg = from_dict(EncoderConfig, self.metadata["encoder_config"])
        self.frontend = frontend or DEFAULT_FRONTEND

    @property
    def num_exits(self) -> int:
        return len(self.cfg.exit_layers)

    def check_chunk_frames(self, chunk_frames: int) -> None:
        multiple = int(self.metadata.get("chunk_frames_multiple", 1))
        if chunk_frames % multiple:
            raise ConfigError(f"this model streams chunks of a multiple of {multiple} frames, got {chunk_frames}")

    def initial_state(self, batch_size: int = 1, device: Any = None) -> EncoderState:
        return EncoderState.initial(self.cfg, batch_size, zeros=_zeros)

    def _catch_up(self, b: int, state: EncoderState, caches: Caches, start: int, left_context_frames: int | None,
                  chunk_frames: int) -> float:
        """``recompute``: block b on the kept chunks that need it and are still in the window."""
        def run(p: PendingChunk) -> np.ndarray:
            return self.graphs.run_block(b, p.hidden, p.start, caches, left_context_frames)[1]

        return state.catch_up(b, start, left_context_frames, chunk_frames, self.num_exits, run)

    def infer(self, feats: np.ndarray, state: EncoderState, *, left_context_frames: int | None,
              decide: ExitDecision | None = None, max_exit: int | None = None,
              skip_policy: SkipPolicy = SkipPolicy.RECOMPUTE) -> ChunkOutput:
        """Stream one chunk: the arguments and the result of :meth:`EarlyExitEncoder.infer`, numpy."""
        buffered = np.concatenate([state.subsampling, np.asarray(feats, np.float32)], axis=1)  # (B, M + N, F)
        hidden, chunk, rest = self.graphs.take_chunk(buffered)
        state.subsampling = np.ascontiguousarray(rest)
        if chunk == 0:
            return ChunkOutput(np.zeros((buffered.shape[0], 0, self.cfg.vocab_size), np.float32), -1, 0.0, state)
        if state.branches and state.frames_done % 2:
            raise ValueError("Splitformer streams need even-sized chunks (the branch runs at half rate)")
        start, caches = state.frames_done, _caches(state)
        last = self.num_exits - 1 if max_exit is None else min(max_exit, self.num_exits - 1)
        work, b, log_probs = 0.0, 0, None
        for b in range(last + 1):
            if skip_policy == SkipPolicy.RECOMPUTE and state.pending:
                work += self._catch_up(b, state, caches, start, left_context_frames, chunk)
            log_probs, hidden = self.graphs.run_block(b, hidden, start, caches, left_context_frames)
            work += 1.0
            if b == last or (decide is not None and decide(b, log_probs, hidden)):
                break
        assert log_probs is not None
        if b < self.num_exits - 1:
            if skip_policy == SkipPolicy.COPY:
                for skipped in range(b + 1, self.num_exits):
                    self.graphs.fill(skipped, hidden, start, caches, left_context_frames)
            else:
                state.pending.append(PendingChunk(hidden=hidden, start=start, next_block=b + 1))
        _store(caches, state)
        state.frames_done += chunk
        return ChunkOutput(log_probs, b, work, state)


def load_onnx_model(model_dir: str | Path, *, threads: int = 1, frontend: str | None = None) -> Pretrained:
    """An exported folder as the recognizer's model: the ONNX encoder, the tokenizer beside it and
    the model's shipped defaults (``info["defaults"]``; an LM they name lies in the folder too)."""
    from asr_ee.data.tokenizer import Tokenizer

    model_dir = Path(model_dir)
    if not is_onnx_model_dir(model_dir):
        raise FileNotFoundError(f"{model_dir} holds no {METADATA_FILE}: export a model with `asr-ee export`")
    encoder = OnnxEncoder(model_dir, threads=threads, frontend=frontend)
    if encoder.metadata.get("tokenizer") is None:
        raise ValueError(f"{model_dir}: exported without a tokenizer")
    tokenizer = Tokenizer(model_dir / encoder.metadata["tokenizer"])
    info = {"defaults": dict(encoder.metadata.get("streaming_defaults") or {}), "onnx": encoder.metadata}
    return Pretrained(encoder, tokenizer, model_dir / METADATA_FILE, info)  # type: ignore[arg-type]
