"""What the exit gate learns to predict: when is a chunk's output at an exit "as good as" deeper?

A label compares exit k's output on one chunk with a *reference* exit's:

* ``frames``: every frame's best token equals the reference's (the chunk oracle's test). Strict: a
  token that moves by one frame, or a blank frame that becomes a repeat, counts as a mismatch,
  although the text is the same.
* ``tokens``: the chunk's best-path tokens, repeats merged and blanks dropped (what CTC greedy
  decoding makes of it), equal the reference's. This is what the text depends on.

The reference is the last exit or a ceiling below it: the shipped model streams with exits at most
at layer 10 (exit 10 with the LM is as good as exit 12), so its gate asks "does exit k say what
exit 10 says?". Exits at or beyond the reference are labelled 1 (the gate stops there at the
latest), which makes a gate with a ceiling stop at the ceiling under any threshold.

Measured on the shipped model's dev split (350 utterances, chunk 8, left context 4; beam + LM,
exits chosen per chunk, `asr-ee evaluate --criteria gate`): against fixed exit 8 (9.31% WER at
0.70 of the compute) and the last exit (8.65%), ``frames`` at the last exit reaches 0.75 compute
at threshold 0.5, ``tokens`` at exit 10 reaches 8.58% at 0.72 (threshold 0.9).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from asr_ee.exits.criteria import ExitView

__all__ = ["LABELS", "LabelKind", "best_path_tokens", "chunk_labels"]

LabelKind = Literal["frames", "tokens"]
LABELS: tuple[str, ...] = ("frames", "tokens")


def best_path_tokens(best: np.ndarray, blank_id: int) -> list[int]:
    """CTC's collapse of frame-wise best tokens: repeats merged, then blanks dropped."""
    tokens, previous = [], None
    for token in np.asarray(best).tolist():
        if token != previous and token != blank_id:
            tokens.append(token)
        previous = token
    return tokens


def chunk_labels(views: Sequence[ExitView], blank_id: int, *, reference: int | None = None,
                 kind: LabelKind = "frames") -> list[float]:
    """Labels of exits 0 .. K-2 on one chunk (``views``: one per exit): 1.0 where the exit's output
    matches exit ``reference``'s (default: the last exit) in the sense of ``kind``."""
    if kind not in LABELS:
        raise ValueError(f"unknown gate label {kind!r}; choose from {', '.join(LABELS)}")
    reference = len(views) - 1 if reference is None else reference
    if not 0 <= reference < len(views):
        raise ValueError(f"reference exit index {reference} out of range for {len(views)} exits")
    ref = views[reference].argmax
    ref_tokens = best_path_tokens(ref, blank_id) if kind == "tokens" else None
    labels = []
    for k in range(len(views) - 1):
        if k >= reference:
            labels.append(1.0)
        elif kind == "frames":
            labels.append(float(bool(np.array_equal(views[k].argmax, ref))))
        else:
            labels.append(float(best_path_tokens(views[k].argmax, blank_id) == ref_tokens))
    return labels
