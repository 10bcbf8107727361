"""Self-distillation of the exits: the loss is KL(last || earlier) over valid frames only, the last
exit is a fixed teacher, and a run with it ends with earlier exits closer to the last one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from asr_ee.config import ConfigError, apply_overrides
from asr_ee.exits.loss import exit_distillation_loss
from asr_ee.training import TrainConfig, train

from test_train import _config


def _log_probs(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).log_softmax(-1)


def test_matches_kl_div_over_valid_frames_only() -> None:
    teacher, a, b = (_log_probs(3, 7, 5, seed=s) for s in (0, 1, 2))
    lengths = torch.tensor([7, 4, 2])
    total, per_exit = exit_distillation_loss([a, b, teacher], lengths)
    expected = []
    for student in (a, b):
        kl = sum(F.kl_div(student[i, :n], teacher[i, :n], log_target=True, reduction="sum")
                 for i, n in enumerate(lengths.tolist()))
        expected.append(kl / 3)
    torch.testing.assert_close(torch.stack(per_exit), torch.stack(expected))
    torch.testing.assert_close(total, (expected[0] + expected[1]) / 2)
    padded = a.clone()
    padded[1, 4:] = _log_probs(3, 5, seed=9)  # frames past utterance 1's length change nothing
    padded[2, 3] = float("nan")
    torch.testing.assert_close(exit_distillation_loss([padded, b, teacher], lengths)[1][0], per_exit[0])
    assert float(exit_distillation_loss([teacher.clone(), teacher], lengths)[0]) == pytest.approx(0.0, abs=1e-6)
    # distill_exit_weights: the total is the weighted sum; a zero weight leaves that exit out
    weighted, _ = exit_distillation_loss([a, b, teacher], lengths, [0.0, 0.7])
    torch.testing.assert_close(weighted, 0.7 * expected[1])


def test_teacher_is_fixed_and_students_move_toward_it() -> None:
    teacher_logits = torch.randn(2, 6, 4, requires_grad=True)
    student_logits = torch.zeros(2, 6, 4, requires_grad=True)
    lengths = torch.tensor([6, 3])
    loss, _ = exit_distillation_loss([student_logits.log_softmax(-1), teacher_logits.log_softmax(-1)], lengths)
    loss.backward()
    assert teacher_logits.grad is None or float(teacher_logits.grad.abs().max()) == 0.0
    assert float(student_logits.grad[1, 3:].abs().max()) == 0.0  # padding frames get no gradient
    with torch.no_grad():  # one gradient step lowers the KL
        stepped = student_logits - 1.0 * student_logits.grad
    after, _ = exit_distillation_loss([stepped.log_softmax(-1), teacher_logits.log_softmax(-1)], lengths)
    assert float(after) < float(loss.detach())


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="distill_weight"):
        apply_overrides(TrainConfig(), ["distill_weight=-1"])
    with pytest.raises(ConfigError, match="distill_weight"):
        apply_overrides(TrainConfig(), ["encoder.exit_layers=[12]", "distill_weight=0.5"])
    with pytest.raises(ConfigError, match="distill_exit_weights"):  # the default model has 6 exits: 5 students
        apply_overrides(TrainConfig(), ["distill_weight=0.5", "distill_exit_weights=[0.5, 0.5]"])
    with pytest.raises(ConfigError, match="distill_exit_weights"):
        apply_overrides(TrainConfig(), ["distill_weight=0.5", "distill_exit_weights=[0, 0, 1, 1, -1]"])
    with pytest.raises(ValueError, match="two exits"):
        exit_distillation_loss([_log_probs(1, 2, 3, seed=0)], torch.tensor([2]))


def _exit_gap(cfg: TrainConfig, weights: dict) -> float:
    """Mean per-utterance KL(last || first exit) on the dev cuts."""
    from asr_ee.data.datamodule import batch_lengths, make_valid_loader
    from asr_ee.models import build_encoder

    model = build_encoder(cfg.encoder)
    model.load_state_dict(weights)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in make_valid_loader(cfg.data):
            lengths, texts, _ = batch_lengths(batch)
            outs, out_lens = model(batch["inputs"], lengths)
            total += float(exit_distillation_loss(outs, out_lens)[0]) * len(texts)
            count += len(texts)
    return total / count


def test_fine_tuning_with_distillation_brings_the_first_exit_closer_to_the_last(overfit_model, overfit_config,
                                                                               tmp_path: Path) -> None:
    """From a model that has learned its utterances, 30 steps with and without distillation: the
    distilled run ends with exit 2 much closer to exit 4 (the run without it is the control)."""
    from asr_ee.checkpoint import list_checkpoints, load_checkpoint
    from asr_ee.data.tokenizer import Tokenizer

    vocab = Tokenizer(overfit_model.data_dir / "tokenizer" / "bpe.model").vocab_size
    gaps = {}
    for weight in (0.0, 2.0):
        cfg = apply_overrides(overfit_config(overfit_model.data_dir, vocab, 30), [
            f"init_from={overfit_model.path}", f"distill_weight={weight}", "optim.peak_lr=1e-3",
            "optim.warmup_steps=5", "checkpoint_every_steps=30", "num_threads=1"])
        train(cfg, tmp_path / f"w{weight}")
        state = load_checkpoint(list_checkpoints(tmp_path / f"w{weight}" / "checkpoints")[-1])
        gaps[weight] = _exit_gap(cfg, state["model"])
    assert gaps[2.0] < 0.7 * gaps[0.0], gaps
