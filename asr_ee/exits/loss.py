"""Multi-exit CTC loss: a weighted sum of one CTC loss per exit, and self-distillation of the exits.

Two details the early-exit papers' code gets wrong and this one gets right: input lengths are the
per-utterance lengths *after* subsampling (padding frames never count), and targets are plain
token ids with no BOS/EOS inside CTC targets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["multi_exit_ctc_loss", "exit_distillation_loss"]


def multi_exit_ctc_loss(exit_log_probs: list[torch.Tensor], lengths: torch.Tensor, targets: list[list[int]],
                        weights: list[float] | None = None, blank: int = 0
                        ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss averaged over utterances.

    Args:
        exit_log_probs: per exit, (B, T', V) log-posteriors.
        lengths: (B,) valid encoder frames per utterance.
        targets: per utterance, token ids (no blank, no BOS/EOS).
        weights: per-exit weights (default: equal, summing to 1).

    Returns:
        total loss (scalar) and the per-exit losses (detached scalars, mean per utterance).
    """
    if weights is None:
        weights = [1.0 / len(exit_log_probs)] * len(exit_log_probs)
    if len(weights) != len(exit_log_probs):
        raise ValueError(f"{len(weights)} exit weights for {len(exit_log_probs)} exits")
    if any(blank in t for t in targets):
        raise ValueError("CTC targets must not contain the blank id")
    flat = torch.tensor([tok for t in targets for tok in t], dtype=torch.long)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    total = exit_log_probs[0].new_zeros(())
    per_exit = []
    for w, log_probs in zip(weights, exit_log_probs):
        loss = F.ctc_loss(log_probs.transpose(0, 1).float(), flat, lengths.cpu(), target_lengths, blank=blank,
                          reduction="sum", zero_infinity=True) / len(targets)
        total = total + w * loss
        per_exit.append(loss.detach())
    return total, per_exit


def exit_distillation_loss(exit_log_probs: list[torch.Tensor], lengths: torch.Tensor,
                           weights: list[float] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Self-distillation: each earlier exit learns the last exit's posteriors, frame by frame.

    ``KL(p_last || p_exit)`` per frame, with the last exit as a fixed teacher (no gradient flows into
    it from this loss), summed over an utterance's valid frames and averaged over utterances (the
    CTC loss's scale). An early exit that agrees with the last one lets a chunk stop there without
    changing the transcript, which is what dynamic exits need.

    Args:
        exit_log_probs: per exit, (B, T', V) log-posteriors; the last one is the teacher.
        lengths: (B,) valid encoder frames per utterance.
        weights: per earlier exit (one fewer than the exits; default: equal, summing to 1).

    Returns:
        total loss (scalar) and the per-exit KL values (detached scalars, mean per utterance).
    """
    students = exit_log_probs[:-1]
    if not students:
        raise ValueError("self-distillation needs at least two exits")
    if weights is None:
        weights = [1.0 / len(students)] * len(students)
    if len(weights) != len(students):
        raise ValueError(f"{len(weights)} distillation weights for {len(students)} earlier exits")
    teacher = exit_log_probs[-1].detach().float()  # (B, T', V)
    frames = torch.arange(teacher.size(1), device=teacher.device)
    valid = frames[None, :] < lengths.to(teacher.device)[:, None]  # (B, T')
    p_teacher = teacher.exp()
    total = teacher.new_zeros(())
    per_exit = []
    for w, log_probs in zip(weights, students):
        kl = (p_teacher * (teacher - log_probs.float())).sum(-1)  # (B, T')
        loss = torch.where(valid, kl, 0.0).sum() / teacher.size(0)  # padding (even non-finite) never counts
        total = total + w * loss
        per_exit.append(loss.detach())
    return total, per_exit
