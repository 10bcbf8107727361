"""4x convolutional subsampling (10 ms fbank frames -> 40 ms encoder frames) that runs on chunks.

Two Conv2d(kernel 3, stride 2) layers with no time padding: output frame ``t`` sees input frames
``4t .. 4t+6`` and nothing else, so a stream that keeps the not-yet-consumed input frames as its
cache produces exactly the frames of the offline pass.
"""

from __future__ import annotations

import torch
from torch import nn

from asr_ee.models.frames import (ENCODER_FRAMES_PER_SECOND, FBANK_FRAMES_PER_SECOND, FIRST_CHUNK_EXTRA,
                                  MIN_INPUT_FRAMES, RIGHT_CONTEXT, STRIDE, chunk_input_frames)

__all__ = ["Conv2dSubsampling", "subsampled_lengths", "chunk_input_frames", "MIN_INPUT_FRAMES",
           "FIRST_CHUNK_EXTRA", "STRIDE", "RIGHT_CONTEXT", "FBANK_FRAMES_PER_SECOND", "ENCODER_FRAMES_PER_SECOND"]


def subsampled_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Encoder frames produced from ``lengths`` fbank frames (0 when fewer than 7)."""
    return torch.clamp(((lengths - 1) // 2 - 1) // 2, min=0)


class Conv2dSubsampling(nn.Module):
    def __init__(self, *, num_mel_bins: int, d_model: int, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, stride=2), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, stride=2), nn.ReLU())
        freq = ((num_mel_bins - 1) // 2 - 1) // 2
        self.out = nn.Linear(channels * freq, d_model)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats: (B, T, F) -> (B, T', D) with T' = ((T - 1) // 2 - 1) // 2, and output lengths."""
        x = self.conv(feats.unsqueeze(1))  # (B, C, T', F')
        x = self.out(x.transpose(1, 2).flatten(2))  # (B, T', D)
        return x, subsampled_lengths(lengths)

    def infer(self, feats: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats: (B, N, F) new fbank frames; cache: (B, M, F) unconsumed frames from before.

        Returns every encoder frame the frames so far allow (B, T', D) and the new cache.
        """
        x = torch.cat([cache, feats], dim=1)
        total = x.size(1)
        produced = max(0, (total - RIGHT_CONTEXT - 1) // STRIDE + 1)
        if produced == 0:
            return x.new_zeros(x.size(0), 0, self.out.out_features), x
        used = (produced - 1) * STRIDE + RIGHT_CONTEXT + 1
        out, _ = self.forward(x[:, :used], torch.full((x.size(0),), used))
        return out, x[:, produced * STRIDE:]
