"""Multi-exit CTC loss: a weighted sum of one CTC loss per exit.

Two details the early-exit papers' code gets wrong and this one gets right: input lengths are the
per-utterance lengths *after* subsampling (padding frames never count), and targets are plain
token ids with no BOS/EOS inside CTC targets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["multi_exit_ctc_loss"]


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
