"""The exported graphs stream exactly as the torch model does: chunk by chunk with carried state,
per exit, under both skip policies, with varying exits and batched streams (fp32, within 1e-4).
The ONNX encoder takes and returns numpy arrays; its state holds numpy arrays."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch

from asr_ee.models import SkipPolicy
from asr_ee.runtime.onnx_encoder import OnnxEncoder
from export_helpers import ARCHS

TOL = 1e-4
CHUNK, LEFT = 4, 8  # encoder frames; the cache is trimmed after two chunks


def _t(array: np.ndarray) -> torch.Tensor:
    assert isinstance(array, np.ndarray)  # the runtime's arrays are numpy, never tensors
    return torch.from_numpy(np.ascontiguousarray(array))


def _chunks(feats: torch.Tensor) -> list[torch.Tensor]:
    """The stream's feeding rule: 4C + 3 fbank frames first, then 4C, the rest last (odd sized)."""
    sizes, pos, out = [4 * CHUNK + 3], 0, []
    while pos < feats.size(1):
        n = sizes[0] if pos == 0 else 4 * CHUNK
        out.append(feats[:, pos:pos + n])
        pos += n
    return out


def _stream_both(encoder, onnx: OnnxEncoder, feats: torch.Tensor, policy: SkipPolicy,
                 exit_of_chunk: Callable[[int], int] | None, max_exit: int | None = None) -> int:
    """Stream ``feats`` (B, N, F) through both; assert every chunk's output and the final state
    agree. Returns how many chunks produced frames."""
    ref_state, got_state = encoder.initial_state(feats.size(0)), onnx.initial_state(feats.size(0))
    produced = 0
    for c, chunk in enumerate(_chunks(feats)):
        decide = None if exit_of_chunk is None else (lambda b, lp, h, c=c: b >= exit_of_chunk(c))
        ref = encoder.infer(chunk, ref_state, left_context_frames=LEFT, decide=decide, max_exit=max_exit,
                            skip_policy=policy)
        got = onnx.infer(chunk.numpy(), got_state, left_context_frames=LEFT, decide=decide, max_exit=max_exit,
                         skip_policy=policy)
        assert (got.exit_index, got.blocks_run) == (ref.exit_index, ref.blocks_run)
        assert got.log_probs.shape == ref.log_probs.shape
        torch.testing.assert_close(_t(got.log_probs), ref.log_probs, atol=TOL, rtol=0)
        produced += ref.log_probs.size(1) > 0
    assert got_state.frames_done == ref_state.frames_done
    torch.testing.assert_close(_t(got_state.subsampling), ref_state.subsampling, atol=0, rtol=0)
    for mine, theirs in zip(got_state.layers + got_state.branches, ref_state.layers + ref_state.branches):
        for name in ("key", "value", "conv"):
            torch.testing.assert_close(_t(getattr(mine, name)), getattr(theirs, name), atol=TOL, rtol=0)
    assert [(p.start, p.next_block) for p in got_state.pending] == [(p.start, p.next_block) for p in ref_state.pending]
    for mine, theirs in zip(got_state.pending, ref_state.pending):
        torch.testing.assert_close(_t(mine.hidden), theirs.hidden, atol=TOL, rtol=0)
    return produced


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("policy", list(SkipPolicy))
def test_every_exit_equals_torch(exported, arch: str, policy: SkipPolicy) -> None:
    encoder, folder = exported(arch)
    onnx = OnnxEncoder(folder)
    feats = torch.randn(1, 4 * CHUNK * 6 + 9, 80, generator=torch.Generator().manual_seed(1))
    for exit_index in range(encoder.num_exits):
        assert _stream_both(encoder, onnx, feats, policy, None, max_exit=exit_index) == 7


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("policy", list(SkipPolicy))
def test_exits_changing_chunk_to_chunk_equal_torch(exported, arch: str, policy: SkipPolicy) -> None:
    """Shallow and deep chunks mixed: ``copy`` fills the skipped layers' caches (fill graphs),
    ``recompute`` catches kept chunks up when a later chunk goes deeper."""
    encoder, folder = exported(arch)
    onnx = OnnxEncoder(folder)
    feats = torch.randn(2, 4 * CHUNK * 7 + 9, 80, generator=torch.Generator().manual_seed(2))
    pattern = [0, 2, 1, 3, 0, 0, 3, 1]
    assert _stream_both(encoder, onnx, feats, policy, lambda c: pattern[c % len(pattern)]) == 8


def test_batched_streams_equal_single_streams(exported) -> None:
    """Two streams in one batch give each stream's own single-stream output."""
    encoder, folder = exported("tiny-splitformer")
    onnx = OnnxEncoder(folder)
    feats = torch.randn(2, 4 * CHUNK + 3, 80, generator=torch.Generator().manual_seed(3)).numpy()
    batched = onnx.infer(feats, onnx.initial_state(2), left_context_frames=LEFT)
    for i in range(2):
        single = onnx.infer(feats[i:i + 1], onnx.initial_state(1), left_context_frames=LEFT)
        torch.testing.assert_close(_t(batched.log_probs[i:i + 1]), _t(single.log_probs), atol=TOL, rtol=0)


def test_odd_chunk_rejected_for_splitformer(exported) -> None:
    from asr_ee.config import ConfigError

    _, folder = exported("tiny-splitformer")
    with pytest.raises(ConfigError, match="multiple of 2"):
        OnnxEncoder(folder).check_chunk_frames(5)
    OnnxEncoder(folder).check_chunk_frames(6)
