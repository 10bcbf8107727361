"""Every exit of each utterance from the exported graphs (``asr-ee evaluate --backend onnx``): the
utterance's fbank frames streamed chunk by chunk through every block (the stream's feeding rule,
left context ``cfg.left_context_chunks``), each exit's posteriors kept. That is what the torch
path's forward under the chunk mask computes, so the report's per-exit rows and per-chunk policies
are computed from it the same way (:func:`asr_ee.evaluation.runner.evaluate`).

:class:`StreamedExits` stands in for the torch path's ``forward_exits``, ``ExitTimer`` (wall time
from a chunk's start to each exit's output, summed) and ``ExitHidden`` (the hidden states each exit
head read, for the learned gate).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from asr_ee.config import ConfigError
from asr_ee.evaluation.batching import Features
from asr_ee.evaluation.config import EvaluationConfig
from asr_ee.models.frames import chunk_input_frames

if TYPE_CHECKING:
    from asr_ee.runtime.onnx_encoder import OnnxEncoder

__all__ = ["StreamedExits"]


class StreamedExits:
    """Per utterance, per exit, (T', V) log-posteriors of an :class:`OnnxEncoder`, streamed."""

    def __init__(self, encoder: "OnnxEncoder", cfg: EvaluationConfig, keep_hidden: bool = False) -> None:
        if cfg.attention != "chunk":
            raise ConfigError("--backend onnx evaluates the stream as it runs: use --attention chunk "
                              "(the exported graphs have no full-context pass)")
        encoder.check_chunk_frames(cfg.chunk_frames)
        self.encoder, self.cfg, self.keep_hidden = encoder, cfg, keep_hidden
        self.seconds = [0.0] * encoder.num_exits
        self._hidden: list[list[torch.Tensor] | None] = []
        self._left = None if cfg.left_context_chunks is None else cfg.chunk_frames * cfg.left_context_chunks

    def _utterance(self, feats: np.ndarray) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        graphs, chunk = self.encoder.graphs, self.cfg.chunk_frames
        caches, buffered, start = graphs.initial_caches(1), feats[None, :0], 0
        exits: list[list[np.ndarray]] = [[] for _ in range(graphs.num_exits)]
        hidden: list[list[np.ndarray]] = [[] for _ in range(graphs.num_exits)]
        pos = 0
        while pos < feats.shape[0]:
            step = chunk_input_frames(chunk, first=pos == 0)
            buffered = np.concatenate([buffered, feats[None, pos:pos + step]], axis=1)
            pos += step
            x, frames, buffered = graphs.take_chunk(buffered)
            if frames == 0:
                continue
            began = time.perf_counter()
            for b in range(graphs.num_exits):
                inputs = x
                log_probs, x = graphs.run_block(b, inputs, start, caches, self._left)
                self.seconds[b] += time.perf_counter() - began
                exits[b].append(log_probs[0])
                hidden[b].append(x[0])
            start += frames
        vocab, dim = self.encoder.cfg.vocab_size, self.encoder.cfg.d_model

        def joined(parts: list[np.ndarray], width: int) -> torch.Tensor:
            return torch.from_numpy(np.concatenate(parts) if parts else np.zeros((0, width), np.float32))

        return [joined(e, vocab) for e in exits], [joined(h, dim) for h in hidden]

    def forward(self, batch: list[Features]) -> list[list[torch.Tensor]]:
        """Per utterance of ``batch``, per exit, (T', V) log-posteriors (the hidden states are kept
        for :meth:`take`)."""
        outs, self._hidden = [], []
        for item in batch:
            log_probs, hidden = self._utterance(item.feats.numpy())
            outs.append(log_probs)
            self._hidden.append(hidden if self.keep_hidden else None)
        return outs

    def take(self, lengths: list[int]) -> list[list[torch.Tensor] | None]:
        """Per utterance of the last :meth:`forward`, per exit, (T', D) hidden states (None unless kept)."""
        hidden, self._hidden = self._hidden, []
        return hidden
