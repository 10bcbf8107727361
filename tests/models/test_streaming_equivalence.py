"""The test that keeps streaming honest: chunk-by-chunk inference with carried state equals the
full forward pass under the same chunk mask."""

from __future__ import annotations

import pytest
import torch

from asr_ee.models import EarlyExitEncoder, SkipPolicy, build_encoder, preset


def _stream(model: EarlyExitEncoder, feats: torch.Tensor, chunk_frames: int, left_chunks: int | None,
            **infer_kwargs) -> tuple[list[torch.Tensor], list[int]]:
    state = model.initial_state(batch_size=feats.size(0))
    left = None if left_chunks is None else left_chunks * chunk_frames
    outs, exits, pos = [], [], 0
    first = True
    while pos < feats.size(1):
        step = 4 * chunk_frames + (3 if first else 0)
        first = False
        out = model.infer(feats[:, pos:pos + step], state, left_context_frames=left, **infer_kwargs)
        pos += step
        if out.log_probs.size(1):
            outs.append(out.log_probs)
            exits.append(out.exit_index)
    return outs, exits


@pytest.mark.parametrize("arch", ["tiny", "tiny-splitformer"])
@pytest.mark.parametrize("chunk_frames,left_chunks", [(2, 1), (4, 2), (4, None), (8, 3)])
def test_chunked_infer_equals_masked_forward(arch: str, chunk_frames: int, left_chunks: int | None) -> None:
    torch.manual_seed(0)
    model = build_encoder(preset(arch)).eval()
    feats = torch.randn(1, 203, 80)
    with torch.no_grad():
        full, lens = model(feats, torch.tensor([203]), chunk_frames=chunk_frames, left_context_chunks=left_chunks)
    outs, exits = _stream(model, feats, chunk_frames, left_chunks)
    streamed = torch.cat(outs, dim=1)
    assert streamed.size(1) == lens.item()
    assert set(exits) == {model.num_exits - 1}
    torch.testing.assert_close(streamed, full[-1], atol=1e-4, rtol=1e-4)


def test_full_context_differs_from_chunked() -> None:
    """Guards the test above: a mask that matters must change the outputs."""
    torch.manual_seed(0)
    model = EarlyExitEncoder(preset("tiny")).eval()
    feats = torch.randn(1, 203, 80)
    with torch.no_grad():
        chunked, _ = model(feats, torch.tensor([203]), chunk_frames=4, left_context_chunks=1)
        full, _ = model(feats, torch.tensor([203]))
    assert (chunked[-1] - full[-1]).abs().max() > 1e-3


@pytest.mark.parametrize("policy", [SkipPolicy.RECOMPUTE, SkipPolicy.COPY])
def test_recompute_is_exact_when_skipping(policy: SkipPolicy) -> None:
    """Chunks that stop at exit 0 then a chunk that goes deep: RECOMPUTE reproduces the full-depth
    outputs exactly (the skipped chunks are within the window); COPY only approximates them."""
    torch.manual_seed(0)
    model = EarlyExitEncoder(preset("tiny")).eval()
    feats = torch.randn(1, 4 * 4 * 6 + 3, 80)
    with torch.no_grad():
        full, _ = model(feats, torch.tensor([feats.size(1)]), chunk_frames=4, left_context_chunks=2)
    decisions = iter([True, True, False, True, False, False])
    outs, exits = _stream(model, feats, 4, 2, decide=lambda b, lp, hidden: next(decisions) if b == 0 else False,
                          skip_policy=policy)
    assert exits == [0, 0, 1, 0, 1, 1]
    deep = [i for i, e in enumerate(exits) if e == 1]
    for i in deep:
        diff = (outs[i] - full[-1][:, 4 * i:4 * i + 4]).abs().max().item()
        if policy == SkipPolicy.RECOMPUTE:
            assert diff < 1e-4
    if policy == SkipPolicy.COPY:
        assert max((outs[i] - full[-1][:, 4 * i:4 * i + 4]).abs().max().item() for i in deep) > 1e-4


@pytest.mark.parametrize("arch", ["tiny", "tiny-splitformer"])
@pytest.mark.parametrize("chunk_frames,left_chunks", [(2, 1), (4, 2), (4, None)])
def test_copy_stream_equals_forward_with_chunk_exits(arch: str, chunk_frames: int, left_chunks: int | None) -> None:
    """A COPY stream whose chunks stop at chosen exits decodes exactly what ``forward`` gives with
    those ``chunk_exits``: the training-time twin of a copy stream (``chunk.skip_prob``)."""
    torch.manual_seed(0)
    model = build_encoder(preset(arch)).eval()
    num_chunks = 13
    feats = torch.randn(1, 4 * chunk_frames * num_chunks + 3, 80)
    targets = torch.randint(0, model.num_exits, (1, num_chunks))
    targets[0, :3] = torch.tensor([0, model.num_exits - 1, 0])  # a deep chunk right after a shallow one
    chunk_index = iter(range(num_chunks))
    current = {"target": -1}

    def decide(b: int, log_probs: torch.Tensor, hidden: torch.Tensor) -> bool:
        if b == 0:
            current["target"] = int(targets[0, next(chunk_index)])
        return b == current["target"]

    outs, exits = _stream(model, feats, chunk_frames, left_chunks, decide=decide, skip_policy=SkipPolicy.COPY)
    assert exits == targets[0].tolist()
    with torch.no_grad():
        spliced, lens = model(feats, torch.tensor([feats.size(1)]), chunk_frames=chunk_frames,
                              left_context_chunks=left_chunks, chunk_exits=targets)
        plain, _ = model(feats, torch.tensor([feats.size(1)]), chunk_frames=chunk_frames,
                         left_context_chunks=left_chunks)
    streamed = torch.cat(outs, dim=1)
    assert streamed.size(1) == lens.item() == num_chunks * chunk_frames
    torch.testing.assert_close(streamed, spliced[-1], atol=1e-4, rtol=1e-4)
    # guard: copying is not exact, so the plain full-depth forward must differ on some deep chunk
    assert (streamed - plain[-1]).abs().max() > 1e-3
    # each exit's spliced output holds the stopping exit's posteriors on the chunks that stopped below it
    frame_exits = targets.repeat_interleave(chunk_frames, dim=1)[0]
    for k, out in enumerate(spliced):
        below = frame_exits < k
        torch.testing.assert_close(out[0, below], spliced[-1][0, below])


def test_chunk_exits_need_a_chunk_mask() -> None:
    model = EarlyExitEncoder(preset("tiny")).eval()
    with pytest.raises(ValueError, match="chunk_exits needs chunk_frames"):
        model(torch.randn(1, 67, 80), torch.tensor([67]), chunk_exits=torch.zeros(1, 4, dtype=torch.long))
