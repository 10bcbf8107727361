"""What a stream carries between chunks, for every backend: the containers hold torch tensors (the
eager encoder) or numpy arrays (the ONNX runtime) alike, and this module imports no torch, so the
recognizer and the runtime without torch share them (stacking for batches, the ``recompute``
policy's catch-up, memory accounting).

Shapes: B batch, M buffered fbank frames, F mel bins, H heads, P cached frames, Dh head dim,
D model dim, K conv kernel, C chunk frames, V vocab.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from asr_ee.models.config import EncoderConfig

__all__ = ["SkipPolicy", "LayerState", "PendingChunk", "EncoderState", "ChunkOutput", "ExitDecision", "Zeros",
           "concat", "nbytes"]

# decide(exit_index, log_probs (B, C, V), hidden (B, C, D): what the exit head read) -> True to stop here
ExitDecision = Callable[[int, Any, Any], bool]
# zeros(*shape) -> a float32 array or tensor of that shape (the backend's own kind)
Zeros = Callable[..., Any]


class SkipPolicy(str, enum.Enum):
    COPY = "copy"
    RECOMPUTE = "recompute"


def concat(arrays: list[Any]) -> Any:
    """Join along dim 0: numpy arrays with numpy, tensors with torch."""
    first = arrays[0]
    if type(first).__module__ == "numpy":
        import numpy as np

        return np.concatenate(arrays)
    import torch

    return torch.cat(arrays)


def nbytes(array: Any) -> int:
    """Bytes of a numpy array or a tensor."""
    return int(array.nbytes) if hasattr(array, "nbytes") else array.numel() * array.element_size()


def _torch_zeros(device: Any = None, dtype: Any = None) -> Zeros:
    import torch

    return lambda *shape: torch.zeros(*shape, device=device, dtype=dtype or torch.float32)


@dataclass
class LayerState:
    """Streaming cache of one Conformer layer.

    Attributes:
        key: (B, H, P, Dh) rotated keys of the last P frames (P <= left context).
        value: (B, H, P, Dh) values of the same frames.
        conv: (B, D, K - 1) inputs of the depthwise convolution for the last K - 1 frames.
    """

    key: Any
    value: Any
    conv: Any

    @classmethod
    def initial(cls, batch_size: int, d_model: int, num_heads: int, conv_kernel: int, device: Any = None,
                dtype: Any = None, *, zeros: Zeros | None = None) -> "LayerState":
        """Empty attention caches and a zero convolution cache (torch tensors unless ``zeros`` says)."""
        zeros = zeros or _torch_zeros(device, dtype)
        head_dim = d_model // num_heads
        return cls(key=zeros(batch_size, num_heads, 0, head_dim), value=zeros(batch_size, num_heads, 0, head_dim),
                   conv=zeros(batch_size, d_model, conv_kernel - 1))

    @staticmethod
    def stack(states: list["LayerState"]) -> "LayerState":
        return LayerState(key=concat([s.key for s in states]), value=concat([s.value for s in states]),
                          conv=concat([s.conv for s in states]))

    def unstack(self) -> list["LayerState"]:
        return [LayerState(key=self.key[i:i + 1], value=self.value[i:i + 1], conv=self.conv[i:i + 1])
                for i in range(self.key.shape[0])]


@dataclass
class PendingChunk:
    """A chunk that stopped before the last exit (kept for ``SkipPolicy.RECOMPUTE``).

    Attributes:
        hidden: (B, C, D) output of block ``next_block - 1``.
        start: encoder frame index of its first frame.
        next_block: first block not yet run on it.
    """

    hidden: Any
    start: int
    next_block: int


@dataclass
class EncoderState:
    """Everything a stream carries from one chunk to the next.

    Attributes:
        subsampling: (B, M, F) fbank frames not yet consumed by the subsampling.
        layers: one :class:`LayerState` per Conformer layer.
        branches: one :class:`LayerState` per parallel branch (Splitformer; in block order).
        frames_done: encoder frames processed so far (the next chunk's first position).
        pending: chunks kept for lazy recomputation, oldest first.
    """

    subsampling: Any
    layers: list[LayerState]
    branches: list[LayerState]
    frames_done: int = 0
    pending: list[PendingChunk] = field(default_factory=list)

    @classmethod
    def initial(cls, cfg: "EncoderConfig", batch_size: int = 1, device: Any = None, *,
                zeros: Zeros | None = None) -> "EncoderState":
        """The state before a stream's first chunk (torch tensors unless ``zeros`` says)."""
        zeros = zeros or _torch_zeros(device)

        def layer() -> LayerState:
            return LayerState.initial(batch_size, cfg.d_model, cfg.num_heads, cfg.conv_kernel, zeros=zeros)

        return cls(subsampling=zeros(batch_size, 0, cfg.num_mel_bins),
                   layers=[layer() for _ in range(cfg.num_layers)],
                   branches=[layer() for _ in cfg.resolved_split_exit_layers()])

    @staticmethod
    def stack(states: list["EncoderState"]) -> "EncoderState":
        """Batch single-stream states that are at the same position with the same cache sizes and
        the same pending chunks (``frames_done`` and the rotary positions are shared)."""
        first = states[0]
        signature = [(p.start, p.next_block) for p in first.pending]
        for s in states[1:]:
            if s.frames_done != first.frames_done or [(p.start, p.next_block) for p in s.pending] != signature:
                raise ValueError("EncoderState.stack: states differ in position or pending chunks")
        return EncoderState(
            subsampling=concat([s.subsampling for s in states]),
            layers=[LayerState.stack([s.layers[i] for s in states]) for i in range(len(first.layers))],
            branches=[LayerState.stack([s.branches[i] for s in states]) for i in range(len(first.branches))],
            frames_done=first.frames_done,
            pending=[PendingChunk(concat([s.pending[j].hidden for s in states]), p.start, p.next_block)
                     for j, p in enumerate(first.pending)])

    def batch_key(self) -> tuple:
        """Equal for states that :meth:`stack` can batch: same position, subsampling cache, attention
        cache sizes and pending chunks."""
        return (self.frames_done, self.subsampling.shape[1], tuple(s.key.shape[2] for s in self.layers),
                tuple(s.key.shape[2] for s in self.branches),
                tuple((p.start, p.next_block, p.hidden.shape[1]) for p in self.pending))

    def catch_up(self, block: int, start: int, left_context_frames: int | None, chunk_frames: int,
                 num_blocks: int, run: Callable[[PendingChunk], Any]) -> float:
        """``recompute``'s lazy catch-up, the same for every backend: drop the kept chunks that fell
        out of the attention window (before ``start - left_context_frames``), run block ``block`` on
        those waiting for it (``run(chunk)`` gives the block's output), retire the ones through the
        last block; returns the work done in chunks' worth of frames."""
        if left_context_frames is not None:
            self.pending = [p for p in self.pending if p.start + p.hidden.shape[1] > start - left_context_frames]
        work = 0.0
        for p in self.pending:
            if p.next_block == block:
                p.hidden, p.next_block = run(p), p.next_block + 1
                work += p.hidden.shape[1] / max(p.hidden.shape[1], chunk_frames)
        self.pending = [p for p in self.pending if p.next_block < num_blocks]
        return work

    def unstack(self) -> list["EncoderState"]:
        layers = [s.unstack() for s in self.layers]
        branches = [s.unstack() for s in self.branches]
        return [EncoderState(subsampling=self.subsampling[i:i + 1], layers=[l[i] for l in layers],
                             branches=[b[i] for b in branches], frames_done=self.frames_done,
                             pending=[PendingChunk(p.hidden[i:i + 1], p.start, p.next_block) for p in self.pending])
                for i in range(self.subsampling.shape[0])]

    def memory_bytes(self) -> int:
        arrays = [self.subsampling] + [p.hidden for p in self.pending]
        for s in self.layers + self.branches:
            arrays += [s.key, s.value, s.conv]
        return sum(nbytes(a) for a in arrays)


@dataclass
class ChunkOutput:
    """Result of one streamed chunk (``infer`` of a backend's encoder).

    Attributes:
        log_probs: (B, C, V) CTC log-posteriors of the exit the chunk stopped at (C may be 0).
        exit_index: index into ``exit_layers`` of that exit (-1 when no frame was produced).
        blocks_run: blocks evaluated for this chunk, including lazy recomputation of earlier chunks,
            in units of chunk-blocks (a catch-up of one earlier chunk through one block counts 1).
        state: the new state.
    """

    log_probs: Any
    exit_index: int
    blocks_run: float
    state: EncoderState
