"""What ONNX export needs of the model, checked in torch: real-valued rotary tables equal the
complex rotation they replace, and an int8 (dynamically quantized) model streams under ``copy``."""

from __future__ import annotations

import torch

from asr_ee.models import EarlyExitEncoder, SkipPolicy, preset
from asr_ee.models.conformer import _rotate, rotary_tables


def test_real_rotary_equals_complex_rotation() -> None:
    positions = torch.arange(3000, 3010)
    head_dim = 16
    x = torch.randn(2, 10, 3, head_dim)
    angles = positions.double()[:, None] / 10000.0 ** (torch.arange(0, head_dim, 2).double() / head_dim)
    rope = torch.polar(torch.ones_like(angles), angles).to(torch.complex64)
    reference = torch.view_as_real(torch.view_as_complex(x.unflatten(-1, (-1, 2)).contiguous()) * rope[:, None])
    torch.testing.assert_close(_rotate(x, rotary_tables(positions, head_dim)), reference.flatten(-2))


def test_int8_model_streams_with_copy_policy() -> None:
    torch.manual_seed(0)
    model = EarlyExitEncoder(preset("tiny")).eval()
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    state = quantized.initial_state(1)
    feats = torch.randn(1, 4 * 8 + 3, 80)
    out = quantized.infer(feats, state, left_context_frames=16, max_exit=0, skip_policy=SkipPolicy.COPY)
    assert out.exit_index == 0
    reference = model.infer(feats, model.initial_state(1), left_context_frames=16, max_exit=0,
                            skip_policy=SkipPolicy.COPY)
    # every layer above the exit got its cache filled from the exit's output, as in fp32
    for got, want in zip(out.state.layers, reference.state.layers):
        assert got.key.shape == want.key.shape == (1, model.cfg.num_heads, 8, model.cfg.d_model // model.cfg.num_heads)
        assert (got.key - want.key).abs().max() < 0.1 * want.key.abs().max()
