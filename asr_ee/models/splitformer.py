"""Splitformer: the early-exit Conformer with a branch beside some exit blocks. In each branch, one
Conformer layer runs on the block's input downsampled 2x in time; its output is upsampled back and
added to the block's output.

Shapes: B batch, T frames, T2 = ceil(T / 2) half-rate frames, D model dim.

Downsampling averages frame pairs (2t, 2t+1) and upsampling repeats each half-rate frame twice,
so with even chunk sizes every chunk maps onto whole half-rate chunks: the branch streams with its
own cache under the chunk mask of half the chunk size and the same number of left chunks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from asr_ee.config import ConfigError
from asr_ee.models.conformer import ConformerLayer, LayerState
from asr_ee.models.config import EncoderConfig
from asr_ee.models.encoder import EarlyExitEncoder
from asr_ee.models.masks import attention_mask

__all__ = ["SplitformerEncoder", "SplitBranch", "downsample2x", "upsample2x", "check_even_chunks"]


def check_even_chunks(chunk_frames: int | None) -> None:
    """The branch runs at half rate: chunks must hold whole frame pairs."""
    if chunk_frames is not None and chunk_frames % 2:
        raise ConfigError(f"Splitformer models need an even chunk_frames (the branch runs at half rate), "
                          f"got {chunk_frames}")


def downsample2x(x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Average frame pairs: (B, T, D) -> (B, T2, D); a lone last frame (odd length) is kept as is.
    Padded frames (beyond ``lengths``) never mix into valid ones."""
    if lengths is None:  # streaming: no padding; written without shape branches, so it traces to ONNX
        odd = torch.cat([x, x[:, -1:]], dim=1)[:, 1::2]  # a lone last frame pairs with itself
        return (x[:, 0::2] + odd) / 2, None
    frames = x.size(1)
    valid = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device) if lengths is None else \
        (torch.arange(frames, device=x.device)[None] < lengths[:, None]).to(x.dtype)
    if frames % 2:
        x, valid = F.pad(x, (0, 0, 0, 1)), F.pad(valid, (0, 1))
    summed = (x * valid[..., None]).unflatten(1, (-1, 2)).sum(2)
    count = valid.unflatten(1, (-1, 2)).sum(2).clamp(min=1.0)
    down_lengths = None if lengths is None else (lengths + 1) // 2
    return summed / count[..., None], down_lengths


def upsample2x(y: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, T2, D) -> (B, frames, D) by repeating each frame twice."""
    return y.unsqueeze(2).expand(-1, -1, 2, -1).flatten(1, 2)[:, :frames]


def _half(frames: int | None) -> int | None:
    return None if frames is None else frames // 2


class SplitBranch(nn.Module):
    def __init__(self, layer: ConformerLayer) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, chunk_frames: int | None,
                left_context_chunks: int | None, skip: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, D) block input -> (B, T, D) to add to the block output. ``skip`` (B, T): frames
        whose chunk stopped earlier (see ``ConformerLayer.forward``); chunks are even-sized, so a
        half-rate frame's pair is skipped or not as a whole."""
        check_even_chunks(chunk_frames)
        down, down_lengths = downsample2x(x, lengths)
        assert down_lengths is not None
        half_chunk = None if chunk_frames is None else chunk_frames // 2
        mask = attention_mask(down_lengths, down.size(1), half_chunk, left_context_chunks)
        y = self.layer(down, mask, self.layer.rope(0, down.size(1), x.device),
                       None if skip is None else skip[:, ::2])
        return upsample2x(y, x.size(1))

    def infer(self, x: torch.Tensor, start: int, state: LayerState, left_context_frames: int | None,
              rope: torch.Tensor | None = None) -> tuple[torch.Tensor, LayerState]:
        """One chunk x: (B, C, D) starting at encoder frame ``start`` (even); ``left_context_frames``
        counts full-rate frames (the branch keeps half as many). ``rope``: the half-rate rotary
        tables (``self.layer.rope(start // 2, ceil(C / 2))``), computed when not given."""
        down, _ = downsample2x(x)
        if rope is None:
            rope = self.layer.rope(start // 2, down.size(1), x.device)
        y, state = self.layer.infer(down, state, rope, _half(left_context_frames))
        return upsample2x(y, x.size(1)), state

    def fill_state(self, hidden: torch.Tensor, start: int, state: LayerState, left_context_frames: int | None,
                   rope: torch.Tensor | None = None) -> LayerState:
        down, _ = downsample2x(hidden)
        if rope is None:
            rope = self.layer.rope(start // 2, down.size(1), hidden.device)
        return self.layer.fill_state(down, state, rope, _half(left_context_frames))


class SplitformerEncoder(EarlyExitEncoder):
    """``arch: splitformer``: a :class:`SplitBranch` beside each block that ends at one of
    ``cfg.resolved_split_exit_layers()`` (parameters ``branches.<i>.layer.*``, in block order)."""

    arch = "splitformer"

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__(cfg)
        split = cfg.resolved_split_exit_layers()
        self.branch_of_block = {cfg.exit_layers.index(layer): i for i, layer in enumerate(split)}
        self.branches = nn.ModuleList([SplitBranch(self._make_layer()) for _ in split])

    def check_chunk_frames(self, chunk_frames: int) -> None:
        check_even_chunks(chunk_frames)
