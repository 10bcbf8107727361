"""The exported graphs of one model on onnxruntime, on numpy arrays (imports no torch).

:class:`OnnxGraphs` runs one block (``block{b}.onnx``: front end or previous hidden states in,
exit ``b``'s log-posteriors and hidden states out) or one cache projection (``fill{b}.onnx``) of a
chunk, feeding the rotary tables of the chunk's positions and trimming the returned key/value
caches to the left context. Caches are a :data:`Caches` dict, ``"layer3"`` or ``"branch0"`` to
``(key, value, conv)``. :class:`~asr_ee.runtime.onnx_encoder.OnnxEncoder` drives it for the
recognizer; a program that needs no torch can drive it directly (tests/export/test_runtime_no_torch.py).

Shapes: B batch, N fbank frames, C chunk frames, D model dim, V vocab, H heads, Dh head dim,
P cached frames, K conv kernel.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from asr_ee.export.format import FORMAT, METADATA_FILE, rotary_tables_np, state_names

__all__ = ["OnnxGraphs", "Caches", "keep_last"]

# "layer{i}" / "branch{j}" -> key (B, H, P, Dh), value (B, H, P, Dh), conv (B, D, K - 1)
Caches = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def keep_last(x: np.ndarray, frames: int | None) -> np.ndarray:
    """The last ``frames`` entries along dim 2 (all for None), as the torch layer trims its cache."""
    if frames is None:
        return x
    return x[:, :, :0] if frames <= 0 else x[:, :, -frames:]


@functools.lru_cache(maxsize=32)
def _rope(start: int, count: int, head_dim: int) -> np.ndarray:
    """The rotary tables of positions [start, start + count): every block of a chunk (and every
    stream at that position) feeds the same ones, so they are computed once (read-only)."""
    tables = rotary_tables_np(np.arange(start, start + count), head_dim)
    tables.setflags(write=False)
    return tables


class OnnxGraphs:
    """The graphs of an exported folder (one onnxruntime session per graph, ``threads`` each)."""

    def __init__(self, model_dir: str | Path, *, threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.metadata: dict[str, Any] = json.loads((self.model_dir / METADATA_FILE).read_text())
        if self.metadata.get("format") != FORMAT:
            raise ValueError(f"{self.model_dir}: format {self.metadata.get('format')!r}, expected {FORMAT!r}")
        self.encoder_config: dict[str, Any] = dict(self.metadata["encoder_config"])
        self.blocks: list[dict[str, Any]] = self.metadata["blocks"]
        self.head_dim = self.encoder_config["d_model"] // self.encoder_config["num_heads"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

        def session(name: str | None) -> ort.InferenceSession | None:
            if name is None:
                return None
            return ort.InferenceSession(str(self.model_dir / name), options, providers=["CPUExecutionProvider"])

        self._step = [session(entry["graph"]) for entry in self.blocks]
        self._fill = [session(entry["fill"]) for entry in self.blocks]

    @property
    def num_exits(self) -> int:
        return len(self.blocks)

    def take_chunk(self, buffered: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
        """Buffered fbank frames (B, M, F) -> block 0's input for every encoder frame they allow
        (B, (C - 1) * stride + right_context + 1, F), that number C (0: none yet) and the frames
        to keep for the next chunk."""
        stride, right = self.metadata["subsampling"]["stride"], self.metadata["subsampling"]["right_context"]
        chunk = max(0, (buffered.shape[1] - right - 1) // stride + 1)
        if chunk == 0:
            return buffered[:, :0], 0, buffered
        return buffered[:, :(chunk - 1) * stride + right + 1], chunk, buffered[:, chunk * stride:]

    def initial_caches(self, batch_size: int = 1) -> Caches:
        """Empty attention caches and zero convolution caches for every layer and branch."""
        cfg = self.encoder_config
        empty = np.zeros((batch_size, cfg["num_heads"], 0, self.head_dim), np.float32)
        conv = np.zeros((batch_size, cfg["d_model"], cfg["conv_kernel"] - 1), np.float32)
        slots = [slot for b in range(self.num_exits) for slot in self._slots(b)]
        return {slot: (empty, empty, conv) for slot in slots}

    def _slots(self, b: int) -> list[str]:
        slots = [f"layer{i}" for i in self.blocks[b]["layers"]]
        if self.blocks[b]["branch"] is not None:
            slots.append(f"branch{self.blocks[b]['branch']}")
        return slots

    def _run(self, session: ort.InferenceSession, b: int, input_name: str, x: np.ndarray, start: int,
             caches: Caches, left_context_frames: int | None) -> list[np.ndarray]:
        chunk = x.shape[1] if input_name != "feats" else (x.shape[1] - 3) // 4
        feeds = {input_name: np.ascontiguousarray(x, dtype=np.float32),
                 "rope": _rope(start, chunk, self.head_dim)}
        if self.blocks[b]["branch"] is not None:
            feeds["branch_rope"] = _rope(start // 2, (chunk + 1) // 2, self.head_dim)
        slots = self._slots(b)
        for slot in slots:
            kind, index = ("branch", slot[6:]) if slot.startswith("branch") else ("layer", slot[5:])
            for name, array in zip(state_names(kind, int(index)), caches[slot]):
                feeds[name] = np.ascontiguousarray(array, dtype=np.float32)
        outputs = session.run(None, feeds)
        head = len(outputs) - 3 * len(slots)
        for n, slot in enumerate(slots):
            key, value, conv = outputs[head + 3 * n: head + 3 * n + 3]
            keep = left_context_frames
            if slot.startswith("branch") and keep is not None:
                keep //= 2  # the branch runs at half rate
            caches[slot] = (keep_last(key, keep), keep_last(value, keep), conv)
        return outputs[:head]

    def run_block(self, b: int, x: np.ndarray, start: int, caches: Caches,
                  left_context_frames: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Block b on a chunk whose first encoder frame is ``start``: x is the fbank frames
        (B, 4 C + 3, F) for block 0, the previous block's output (B, C, D) otherwise. Updates
        ``caches``; returns exit b's log-posteriors (B, C, V) and the hidden states (B, C, D)."""
        log_probs, hidden = self._run(self._step[b], b, "feats" if b == 0 else "prev_hidden", x, start, caches,
                                      left_context_frames)
        return log_probs, hidden

    def fill(self, b: int, hidden: np.ndarray, start: int, caches: Caches, left_context_frames: int | None) -> None:
        """``copy`` policy: block b's caches extended with entries projected from ``hidden``
        (B, C, D), the output of the exit where the chunk stopped (b >= 1)."""
        session = self._fill[b]
        if session is None:
            raise ValueError(f"block {b} has no fill graph (the first block is never skipped)")
        self._run(session, b, "prev_hidden", hidden, start, caches, left_context_frames)
