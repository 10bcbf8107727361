"""Conformer layer with a streaming ``infer`` twin.

Shapes: B batch, T frames, C chunk frames, D model dim, H heads, Dh = D / H, K conv kernel,
P cached (left-context) frames.

The layer follows ``torchaudio.models.ConformerLayer`` (macaron half-step feed-forwards, pre-norm
self-attention, convolution module with BatchNorm, final LayerNorm) so the weights of a torchaudio
layer load into it, with two streaming changes, both switchable: rotary position embeddings on
queries and keys (torchaudio's layer has no positional information), and a causal depthwise
convolution. ``forward`` runs a whole (masked) sequence; ``infer`` runs one chunk against a
:class:`LayerState` cache and gives the same numbers as ``forward`` under the same chunk mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from asr_ee.models.state import LayerState  # shared with the runtime without torch

__all__ = ["LayerState", "ConformerLayer", "rotary_tables"]


def rotary_tables(positions: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Rotations (T, Dh/2, 2) for absolute frame positions: ``[..., 0]`` the cosines, ``[..., 1]``
    the sines (angles computed in float64 so hour-long streams keep full precision; real-valued,
    so the tables and the rotation export to ONNX)."""
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device)
                                  / head_dim))
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return torch.stack([angles.cos(), angles.sin()], dim=-1).to(torch.float32)


def _keep_last(x: torch.Tensor, frames: int | None) -> torch.Tensor:
    """The last ``frames`` entries of x along dim 2 (all of them for None). A negative-start slice
    (clamped when x is shorter), so a traced graph keeps it for any cache length."""
    if frames is None:
        return x
    return x[:, :, :0] if frames <= 0 else x[:, :, -frames:]


def _rotate(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """Rotate feature pairs (2i, 2i+1) of x (B, T, N, Dh) by the angles of rope (T, Dh/2, 2):
    the complex product (x0 + i x1)(cos + i sin), written with real tensors."""
    pairs = x.float().unflatten(-1, (-1, 2))  # (B, T, N, Dh/2, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    cos, sin = rope[:, None, :, 0], rope[:, None, :, 1]  # (T, 1, Dh/2)
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2).to(x.dtype)


class _FeedForward(nn.Module):
    def __init__(self, d_model: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.sequential = nn.Sequential(
            nn.LayerNorm(d_model), nn.Linear(d_model, hidden), nn.SiLU(), nn.Dropout(dropout),
            nn.Linear(hidden, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequential(x)


class _SelfAttention(nn.Module):
    """Multi-head self-attention with optional rotary positions and a key/value cache."""

    def __init__(self, d_model: int, num_heads: int, dropout: float, rotary: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.rotary = rotary
        self.dropout = dropout
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _project(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` of the input projection applied to x (B, T, D). A quantized
        projection (``torch.ao`` dynamic int8) has no weight tensor to slice: it projects all
        rows and keeps the wanted ones."""
        weight = getattr(self.in_proj, "weight", None)
        if isinstance(weight, torch.Tensor):
            return F.linear(x, weight[start:stop], self.in_proj.bias[start:stop])
        return self.in_proj(x)[..., start:stop]

    def project_kv(self, x: torch.Tensor, rope: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, H, T, Dh) of normalized inputs x (B, T, D)."""
        d = x.size(-1)
        kv = self._project(x, d, 3 * d)  # (B, T, 2D)
        k, v = (t.unflatten(-1, (self.num_heads, self.head_dim)) for t in (kv[..., :d], kv[..., d:]))  # (B, T, H, Dh)
        if self.rotary and rope is not None:
            k = _rotate(k, rope)
        return k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                rope: torch.Tensor | None,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                kv_x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, T, D); mask: bool, broadcastable to (B, H, T, P + T), True = attend; ``kv_x``
        (B, T, D): project keys and values from it instead of x (queries still come from x).

        Returns the output (B, T, D) and the keys/values (B, H, P + T, Dh) it attended to.
        """
        proj = self.in_proj(x)  # (B, T, 3D)
        d = x.size(-1)
        if kv_x is not None:
            proj = torch.cat([proj[..., :d], self._project(kv_x, d, 3 * d)], dim=-1)
        qk = proj[..., :2 * d].unflatten(-1, (2 * self.num_heads, self.head_dim))  # (B, T, 2H, Dh)
        if self.rotary and rope is not None:
            qk = _rotate(qk, rope)
        q, k = qk.transpose(1, 2).split(self.num_heads, dim=1)  # (B, H, T, Dh) each
        v = proj[..., 2 * d:].unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(y.transpose(1, 2).flatten(2)), k, v


class _ConvModule(nn.Module):
    """LayerNorm, pointwise conv + GLU, depthwise conv (causal or centred), norm, SiLU, pointwise."""

    def __init__(self, d_model: int, kernel: int, dropout: float, causal: bool, norm: str) -> None:
        super().__init__()
        self.kernel = kernel
        self.causal = causal
        self.layer_norm = nn.LayerNorm(d_model)
        self.pointwise1 = nn.Conv1d(d_model, 2 * d_model, 1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, groups=d_model)
        self.norm = nn.BatchNorm1d(d_model) if norm == "batch" else nn.LayerNorm(d_model)
        self.pointwise2 = nn.Conv1d(d_model, d_model, 1)
        self.dropout = nn.Dropout(dropout)

    def pre_depthwise(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> depthwise conv inputs (B, D, T)."""
        return F.glu(self.pointwise1(self.layer_norm(x).transpose(1, 2)), dim=1)

    def _post_depthwise(self, y: torch.Tensor) -> torch.Tensor:
        if isinstance(self.norm, nn.LayerNorm):
            y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        else:
            y = self.norm(y)
        return self.dropout(self.pointwise2(F.silu(y))).transpose(1, 2)

    def forward(self, x: torch.Tensor, cache: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (B, T, D) -> (B, T, D), and the new cache (B, D, K-1) when streaming."""
        h = self.pre_depthwise(x)  # (B, D, T)
        if cache is not None:
            h = torch.cat([cache, h], dim=2)
            new_cache = h[:, :, h.size(2) - (self.kernel - 1):]
        elif self.causal:
            h, new_cache = F.pad(h, (self.kernel - 1, 0)), None
        else:
            pad = (self.kernel - 1) // 2
            h, new_cache = F.pad(h, (pad, self.kernel - 1 - pad)), None
        return self._post_depthwise(self.depthwise(h)), new_cache


class ConformerLayer(nn.Module):
    """One Conformer layer (macaron FFN, MHSA, conv module, FFN, LayerNorm)."""

    def __init__(self, *, d_model: int, num_heads: int, ffn_dim: int, conv_kernel: int,
                 dropout: float = 0.0, causal: bool = True, rotary: bool = True,
                 conv_norm: str = "batch") -> None:
        super().__init__()
        self.d_model, self.num_heads, self.conv_kernel = d_model, num_heads, conv_kernel
        self.ffn1 = _FeedForward(d_model, ffn_dim, dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.self_attn = _SelfAttention(d_model, num_heads, dropout, rotary)
        self.self_attn_dropout = nn.Dropout(dropout)
        self.conv_module = _ConvModule(d_model, conv_kernel, dropout, causal, conv_norm)
        self.ffn2 = _FeedForward(d_model, ffn_dim, dropout)
        self.final_layer_norm = nn.LayerNorm(d_model)

    def rope(self, start: int, length: int, device: torch.device | None = None) -> torch.Tensor:
        """Rotary tables for frames ``start .. start + length - 1`` (shared by every layer of this size)."""
        return rotary_tables(torch.arange(start, start + length, device=device), self.d_model // self.num_heads)

    def _run(self, x: torch.Tensor, mask: torch.Tensor | None, rope, state: LayerState | None,
             max_cache_frames: int | None, skip: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, LayerState | None]:
        s = None if skip is None else skip[..., None]  # (B, T, 1): frames passed through (see forward)
        h = x + 0.5 * self.ffn1(x)
        cache = (state.key, state.value) if state is not None else None
        q = self.self_attn_layer_norm(h)
        kv_x = None if s is None else torch.where(s, self.self_attn_layer_norm(x), q)
        attn, k, v = self.self_attn(q, mask, rope, cache, kv_x)
        h = h + self.self_attn_dropout(attn)
        conv, conv_cache = self.conv_module(h if s is None else torch.where(s, x, h),
                                            state.conv if state is not None else None)
        h = h + conv
        h = self.final_layer_norm(h + 0.5 * self.ffn2(h))
        if s is not None:
            h = torch.where(s, x, h)
        if state is None:
            return h, None
        return h, LayerState(key=_keep_last(k, max_cache_frames), value=_keep_last(v, max_cache_frames),
                             conv=conv_cache)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                rope: torch.Tensor | None = None, skip: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, D); mask: bool (B or 1, 1, T, T), True = attend. Returns (B, T, D).

        ``skip`` (B, T) bool marks frames whose chunk stopped at an earlier exit: they pass through
        unchanged, and the other frames see them exactly as :meth:`fill_state` caches them in a
        ``copy`` stream (keys, values and convolution inputs projected from x itself). Training
        with it is training the way a ``copy`` stream runs."""
        return self._run(x, mask, rope, None, None, skip)[0]

    def infer(self, x: torch.Tensor, state: LayerState, rope: torch.Tensor | None,
              max_cache_frames: int | None) -> tuple[torch.Tensor, LayerState]:
        """One chunk x: (B, C, D) attending to itself and the cached frames. Returns (B, C, D) and
        the new state, whose key/value cache keeps at most ``max_cache_frames`` frames (None: all)."""
        if not self.conv_module.causal:
            raise RuntimeError("streaming inference needs a causal convolution (EncoderConfig.causal)")
        out, new_state = self._run(x, None, rope, state, max_cache_frames)
        assert new_state is not None
        return out, new_state

    def fill_state(self, hidden: torch.Tensor, state: LayerState,
                   rope: torch.Tensor | None, max_cache_frames: int | None) -> LayerState:
        """Cache entries for frames this layer skipped, taking ``hidden`` (B, C, D) (the output of
        the exit where the chunk stopped) as if it were this layer's input ("copy" strategy)."""
        k, v = self.self_attn.project_kv(self.self_attn_layer_norm(hidden), rope)
        k, v = torch.cat([state.key, k], dim=2), torch.cat([state.value, v], dim=2)
        conv = torch.cat([state.conv, self.conv_module.pre_depthwise(hidden)], dim=2)
        return LayerState(key=_keep_last(k, max_cache_frames), value=_keep_last(v, max_cache_frames),
                          conv=_keep_last(conv, self.conv_kernel - 1))
