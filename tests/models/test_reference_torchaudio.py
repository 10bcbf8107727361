"""Reference check against a peer implementation: in full-context, non-causal mode and without
rotary positions (torchaudio's layer has no positional information), our ConformerLayer given the
weights of a ``torchaudio.models.Conformer`` layer computes the same output. The two differences
we ship for streaming — rotary positions and the causal depthwise convolution — are switched off
here, and the second test shows each of them does change the output."""

from __future__ import annotations

import pytest
import torch
import torchaudio

from asr_ee.models.conformer import ConformerLayer, rotary_tables
from asr_ee.models.masks import attention_mask

D, HEADS, FFN, KERNEL = 64, 4, 128, 7


def _copy_weights(ours: ConformerLayer, theirs: torch.nn.Module) -> None:
    mapping = {
        "self_attn.in_proj.weight": "self_attn.in_proj_weight",
        "self_attn.in_proj.bias": "self_attn.in_proj_bias",
        "conv_module.pointwise1.weight": "conv_module.sequential.0.weight",
        "conv_module.pointwise1.bias": "conv_module.sequential.0.bias",
        "conv_module.depthwise.weight": "conv_module.sequential.2.weight",
        "conv_module.depthwise.bias": "conv_module.sequential.2.bias",
        "conv_module.pointwise2.weight": "conv_module.sequential.5.weight",
        "conv_module.pointwise2.bias": "conv_module.sequential.5.bias",
    }
    for suffix in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        mapping[f"conv_module.norm.{suffix}"] = f"conv_module.sequential.3.{suffix}"
    theirs_state = theirs.state_dict()
    ours_state = {k: theirs_state[mapping.get(k, k)] for k in ours.state_dict()}
    ours.load_state_dict(ours_state)
    assert len(ours_state) == len(theirs_state), "every torchaudio weight is used exactly once"


def _pair(**ours_kwargs: object) -> tuple[ConformerLayer, torch.nn.Module]:
    torch.manual_seed(0)
    ref = torchaudio.models.Conformer(input_dim=D, num_heads=HEADS, ffn_dim=FFN, num_layers=1,
                                      depthwise_conv_kernel_size=KERNEL).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        norm = ref.conformer_layers[0].conv_module.sequential[3]
        norm.running_mean.uniform_(-0.5, 0.5), norm.running_var.uniform_(0.5, 2.0)
    kwargs = dict(d_model=D, num_heads=HEADS, ffn_dim=FFN, conv_kernel=KERNEL, causal=False, rotary=False,
                  conv_norm="batch")
    kwargs.update(ours_kwargs)
    ours = ConformerLayer(**kwargs).eval()
    _copy_weights(ours, ref.conformer_layers[0])
    return ours, ref


def _outputs(ours: ConformerLayer, ref: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    # Unpadded batch: with padding, a centred convolution mixes padded frames into the last valid
    # ones in both implementations, and what padded frames hold differs (ours let padded queries
    # attend to themselves so no softmax row is empty), so only unpadded outputs are comparable.
    x = torch.randn(3, 50, D)
    lengths = torch.tensor([50, 50, 50])
    with torch.no_grad():
        expected, _ = ref(x, lengths)
        got = ours(x, attention_mask(lengths, 50, None, None), rotary_tables(torch.arange(50), D // HEADS))
    valid = torch.arange(50)[None, :] < lengths[:, None]
    return got[valid], expected[valid]


def test_layer_matches_torchaudio_conformer_layer() -> None:
    got, expected = _outputs(*_pair())
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("difference", [{"rotary": True}, {"causal": True}])
def test_streaming_differences_are_real(difference: dict) -> None:
    got, expected = _outputs(*_pair(**difference))
    assert (got - expected).abs().max() > 1e-3
