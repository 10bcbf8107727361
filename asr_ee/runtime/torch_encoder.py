"""The eager torch encoder behind the recognizer's numpy surface
(:class:`~asr_ee.runtime.backend.StreamingEncoder`): features in as numpy, posteriors out as numpy,
``decide`` called with numpy views; the state stays the model's own (tensors). A chunk's outputs are
small (C x V), so the conversions cost little, and the torch path's numbers do not change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from asr_ee.models.state import ChunkOutput, EncoderState, ExitDecision, SkipPolicy

if TYPE_CHECKING:
    from asr_ee.models.encoder import EarlyExitEncoder

__all__ = ["TorchStreamingEncoder"]


class TorchStreamingEncoder:
    """``module.infer`` on numpy arrays; ``module`` is put in eval mode."""

    streams_numpy = True
    frontend = "lhotse"  # the features the model was trained on (asr_ee.features)

    def __init__(self, module: "EarlyExitEncoder") -> None:
        self.module = module.eval()
        self.cfg = module.cfg

    @property
    def num_exits(self) -> int:
        return self.module.num_exits

    def check_chunk_frames(self, chunk_frames: int) -> None:
        self.module.check_chunk_frames(chunk_frames)

    def initial_state(self, batch_size: int = 1, device: Any = None) -> EncoderState:
        return self.module.initial_state(batch_size, device)

    def infer(self, feats: np.ndarray, state: EncoderState, *, left_context_frames: int | None,
              decide: ExitDecision | None = None, max_exit: int | None = None,
              skip_policy: SkipPolicy = SkipPolicy.RECOMPUTE) -> ChunkOutput:
        """:meth:`EarlyExitEncoder.infer` with numpy features (B, N, F) and posteriors."""
        def decide_numpy(exit_index: int, log_probs: torch.Tensor, hidden: torch.Tensor) -> bool:
            assert decide is not None
            return decide(exit_index, log_probs.cpu().numpy(), hidden.cpu().numpy())

        out = self.module.infer(torch.from_numpy(np.ascontiguousarray(feats, np.float32)), state,
                                left_context_frames=left_context_frames,
                                decide=None if decide is None else decide_numpy, max_exit=max_exit,
                                skip_policy=skip_policy)
        return ChunkOutput(out.log_probs.cpu().numpy(), out.exit_index, out.blocks_run, out.state)
