"""build_encoder picks the class from the config's arch; the encoder state gives the key that says
which streams can be batched."""

from __future__ import annotations

import pytest
import torch

from asr_ee.config import ConfigError
from asr_ee.models import ARCHITECTURES, EarlyExitEncoder, EncoderState, SplitformerEncoder, build_encoder, preset


def test_build_encoder_dispatches_on_arch() -> None:
    assert type(build_encoder(preset("tiny"))) is EarlyExitEncoder
    splitformer = build_encoder(preset("tiny-splitformer"))
    assert type(splitformer) is SplitformerEncoder and len(splitformer.branches) == 2
    assert set(ARCHITECTURES) == {"conformer", "splitformer"}
    with pytest.raises(ConfigError, match="build_encoder"):
        EarlyExitEncoder(preset("tiny-splitformer"))  # would build a state the model cannot use


def test_splitformer_refuses_odd_chunks_once_for_every_path() -> None:
    torch.manual_seed(0)
    model = build_encoder(preset("tiny-splitformer")).eval()
    with pytest.raises(ConfigError, match="even"):
        model.check_chunk_frames(3)
    build_encoder(preset("tiny")).check_chunk_frames(3)  # the Conformer streams any chunk size
    state = model.initial_state()
    model.infer(torch.randn(1, 4 * 3 + 3, 80), state, left_context_frames=None)  # an odd chunk: 3 frames
    with pytest.raises(ConfigError, match="even"):
        model.infer(torch.randn(1, 8, 80), state, left_context_frames=None)
    with pytest.raises(ConfigError, match="even"):
        model(torch.randn(1, 40, 80), torch.tensor([40]), chunk_frames=3, left_context_chunks=1)


def test_states_with_one_batch_key_stack_and_others_do_not() -> None:
    torch.manual_seed(0)
    model = build_encoder(preset("tiny")).eval()
    first, second, behind = model.initial_state(), model.initial_state(), model.initial_state()
    for state in (first, second):
        model.infer(torch.randn(1, 4 * 4 + 3, 80), state, left_context_frames=8)
    assert first.batch_key() == second.batch_key() != behind.batch_key()
    stacked = EncoderState.stack([first, second])
    assert stacked.batch_key() == first.batch_key()  # the key does not depend on the batch size
    with pytest.raises(ValueError, match="differ in position"):
        EncoderState.stack([first, behind])
