"""The early-exit encoder's streaming step on onnxruntime, from a folder ``asr-ee export`` wrote.

:class:`OnnxEncoder` has the surface the recognizer drives (:class:`~asr_ee.runtime.backend.StreamingEncoder`:
``cfg``, ``num_exits``, ``initial_state``, ``infer``) and the same semantics as
:meth:`asr_ee.models.encoder.EarlyExitEncoder.infer`: the subsampling's frame cache, block-by-block
exits with a ``decide`` callback, the ``copy`` policy's cache projection (``fill{b}`` graphs) and the
``recompute`` policy's catch-up of kept chunks, caches trimmed to the left context here (the graphs
return every frame they attended to). The state stays an :class:`~asr_ee.models.encoder.EncoderState`
so streams stack and unstack for batching exactly as with torch; the graphs run on numpy views of it.

Shapes: B batch, N fbank frames, C chunk frames, D model dim, V vocab, H heads, Dh head dim.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from asr_ee.config import ConfigError, from_dict
from asr_ee.export.format import FORMAT, METADATA_FILE, rotary_tables_np, state_names
from asr_ee.models.config import EncoderConfig
from asr_ee.models.conformer import LayerState
from asr_ee.models.encoder import ChunkOutput, EncoderState, ExitDecision, PendingChunk, SkipPolicy
from asr_ee.models.subsampling import RIGHT_CONTEXT, STRIDE
from asr_ee.pretrained import Pretrained

__all__ = ["OnnxEncoder", "load_onnx_model", "is_onnx_model_dir"]


def is_onnx_model_dir(path: str | Path | None) -> bool:
    """True for a folder holding an exported model's metadata file."""
    return path is not None and (Path(path) / METADATA_FILE).is_file()


def _keep_last(x: np.ndarray, frames: int | None) -> np.ndarray:
    """The last ``frames`` entries along dim 2 (all for None), as the torch layer trims its cache."""
    if frames is None:
        return x
    return x[:, :, :0] if frames <= 0 else x[:, :, -frames:]


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)


class OnnxEncoder:
    """The streaming step of an exported model (one onnxruntime session per graph).

    Args:
        model_dir: the folder ``asr-ee export`` wrote.
        threads: onnxruntime intra-op threads per session.
    """

    def __init__(self, model_dir: str | Path, *, threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.metadata: dict[str, Any] = json.loads((self.model_dir / METADATA_FILE).read_text())
        if self.metadata.get("format") != FORMAT:
            raise ValueError(f"{self.model_dir}: format {self.metadata.get('format')!r}, expected {FORMAT!r}")
        self.cfg = from_dict(EncoderConfig, self.metadata["encoder_config"])
        self.head_dim = self.cfg.d_model // self.cfg.num_heads
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

        def session(name: str | None) -> ort.InferenceSession | None:
            if name is None:
                return None
            return ort.InferenceSession(str(self.model_dir / name), options, providers=["CPUExecutionProvider"])

        self.blocks = self.metadata["blocks"]
        self._step = [session(entry["graph"]) for entry in self.blocks]
        self._fill = [session(entry["fill"]) for entry in self.blocks]

    @property
    def num_exits(self) -> int:
        return len(self.cfg.exit_layers)

    def check_chunk_frames(self, chunk_frames: int) -> None:
        multiple = int(self.metadata.get("chunk_frames_multiple", 1))
        if chunk_frames % multiple:
            raise ConfigError(f"this model streams chunks of a multiple of {multiple} frames, got {chunk_frames}")

    def initial_state(self, batch_size: int = 1, device: torch.device | None = None) -> EncoderState:
        return EncoderState.initial(self.cfg, batch_size)

    # ------------------------------------------------------------------ graphs
    def _rope_feeds(self, b: int, start: int, chunk: int) -> dict[str, np.ndarray]:
        feeds = {"rope": rotary_tables_np(np.arange(start, start + chunk), self.head_dim)}
        if self.blocks[b]["branch"] is not None:
            feeds["branch_rope"] = rotary_tables_np(np.arange(start // 2, start // 2 + (chunk + 1) // 2),
                                                    self.head_dim)
        return feeds

    def _state_slots(self, b: int, state: EncoderState) -> list[tuple[str, int, LayerState]]:
        slots = [("layer", i, state.layers[i]) for i in self.blocks[b]["layers"]]
        j = self.blocks[b]["branch"]
        if j is not None:
            slots.append(("branch", j, state.branches[j]))
        return slots

    def _run(self, session: ort.InferenceSession, b: int, input_name: str, x: np.ndarray, start: int,
             chunk: int, state: EncoderState, left_context_frames: int | None) -> list[np.ndarray]:
        """Run a block or fill graph; store its new (trimmed) caches in ``state``; return the
        outputs before the state (``log_probs``, ``hidden`` for a block, nothing for a fill)."""
        feeds = {input_name: x, **self._rope_feeds(b, start, chunk)}
        slots = self._state_slots(b, state)
        for kind, index, layer_state in slots:
            for name, tensor in zip(state_names(kind, index), (layer_state.key, layer_state.value, layer_state.conv)):
                feeds[name] = _np(tensor)
        outputs = session.run(None, feeds)
        head = len(outputs) - 3 * len(slots)
        for n, (kind, index, _) in enumerate(slots):
            key, value, conv = outputs[head + 3 * n: head + 3 * n + 3]
            keep = left_context_frames if kind == "layer" or left_context_frames is None else left_context_frames // 2
            new = LayerState(key=torch.from_numpy(np.ascontiguousarray(_keep_last(key, keep))),
                             value=torch.from_numpy(np.ascontiguousarray(_keep_last(value, keep))),
                             conv=torch.from_numpy(conv))
            if kind == "layer":
                state.layers[index] = new
            else:
                state.branches[index] = new
        return outputs[:head]

    def _catch_up(self, b: int, state: EncoderState, start: int, left_context_frames: int | None,
                  chunk_frames: int) -> float:
        """``recompute``: block b on the kept chunks that need it and are still in the window."""
        if left_context_frames is not None:
            state.pending = [p for p in state.pending if p.start + p.hidden.size(1) > start - left_context_frames]
        work = 0.0
        for p in state.pending:
            if p.next_block == b:
                frames = p.hidden.size(1)
                _, hidden = self._run(self._step[b], b, "prev_hidden", _np(p.hidden), p.start, frames, state,
                                      left_context_frames)
                p.hidden, p.next_block = torch.from_numpy(hidden), p.next_block + 1
                work += frames / max(frames, chunk_frames)
        state.pending = [p for p in state.pending if p.next_block < self.num_exits]
        return work

    # ------------------------------------------------------------------ one chunk
    def infer(self, feats: torch.Tensor, state: EncoderState, *, left_context_frames: int | None,
              decide: ExitDecision | None = None, max_exit: int | None = None,
              skip_policy: SkipPolicy = SkipPolicy.RECOMPUTE) -> ChunkOutput:
        """Stream one chunk: the arguments and the result of :meth:`EarlyExitEncoder.infer`."""
        x = torch.cat([state.subsampling, feats.to(torch.float32)], dim=1)  # (B, M + N, F)
        chunk = max(0, (x.size(1) - RIGHT_CONTEXT - 1) // STRIDE + 1)
        if chunk == 0:
            state.subsampling = x
            return ChunkOutput(x.new_zeros(x.size(0), 0, self.cfg.vocab_size), -1, 0.0, state)
        if self.cfg.resolved_split_exit_layers() and state.frames_done % 2:
            raise ValueError("Splitformer streams need even-sized chunks (the branch runs at half rate)")
        used = (chunk - 1) * STRIDE + RIGHT_CONTEXT + 1
        block_input, state.subsampling = _np(x[:, :used]), x[:, chunk * STRIDE:]
        start = state.frames_done
        last = self.num_exits - 1 if max_exit is None else min(max_exit, self.num_exits - 1)
        work, b = 0.0, 0
        hidden = log_probs = None
        for b in range(last + 1):
            if skip_policy == SkipPolicy.RECOMPUTE and state.pending:
                work += self._catch_up(b, state, start, left_context_frames, chunk)
            log_probs, hidden = self._run(self._step[b], b, "feats" if b == 0 else "prev_hidden",
                                          block_input if b == 0 else hidden, start, chunk, state, left_context_frames)
            work += 1.0
            if b == last or (decide is not None and decide(b, torch.from_numpy(log_probs), torch.from_numpy(hidden))):
                break
        assert hidden is not None and log_probs is not None
        if b < self.num_exits - 1:
            if skip_policy == SkipPolicy.COPY:
                for skipped in range(b + 1, self.num_exits):
                    self._run(self._fill[skipped], skipped, "prev_hidden", hidden, start, chunk, state, left_context_frames)
            else:
                state.pending.append(PendingChunk(hidden=torch.from_numpy(hidden), start=start, next_block=b + 1))
        state.frames_done += chunk
        return ChunkOutput(torch.from_numpy(log_probs), b, work, state)


def load_onnx_model(model_dir: str | Path, *, threads: int = 1) -> Pretrained:
    """An exported folder as the recognizer's model: the ONNX encoder, the tokenizer beside it and
    the model's shipped defaults (``info["defaults"]``; an LM they name lies in the folder too)."""
    from asr_ee.data.tokenizer import Tokenizer

    model_dir = Path(model_dir)
    if not is_onnx_model_dir(model_dir):
        raise FileNotFoundError(f"{model_dir} holds no {METADATA_FILE}: export a model with `asr-ee export`")
    encoder = OnnxEncoder(model_dir, threads=threads)
    if encoder.metadata.get("tokenizer") is None:
        raise ValueError(f"{model_dir}: exported without a tokenizer")
    tokenizer = Tokenizer(model_dir / encoder.metadata["tokenizer"])
    info = {"defaults": dict(encoder.metadata.get("streaming_defaults") or {}), "onnx": encoder.metadata}
    return Pretrained(encoder, tokenizer, model_dir / METADATA_FILE, info)  # type: ignore[arg-type]
