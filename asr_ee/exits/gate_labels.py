"""What the exit gate learns to predict: when is a chunk's output at an exit "as good as" deeper?

A label compares exit k's output on one chunk with a *reference* exit's:

* ``frames``: every frame's best token equals the reference's (the chunk oracle's test). Strict: a
  token that moves by one frame, or a blank frame that becomes a repeat, counts as a mismatch,
  although the text is the same.
* ``tokens``: the chunk's best-path tokens, repeats merged and blanks dropped (what CTC greedy
  decoding makes of it), equal the reference's. This is what the text depends on.

* ``path``: the exit scores the path the reference's beam + LM decoding takes through the chunk
  (its hypothesis, force-aligned to the reference exit's posteriors: one token or blank per frame)
  nearly as well as the reference does: the mean log-probability per frame of that path under exit k
  is at least the reference's minus ``margin``. This is what the beam + LM's choice depends on: an
  exit whose best tokens agree but whose posteriors are flatter (the LM then overrules them) fails
  it, an exit that keeps the hypothesis likely although its best frame tokens differ passes it.

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

__all__ = ["LABELS", "LabelKind", "best_path_tokens", "chunk_labels", "viterbi_path", "DEFAULT_PATH_MARGIN"]

LabelKind = Literal["frames", "tokens", "path"]
LABELS: tuple[str, ...] = ("frames", "tokens", "path")
DEFAULT_PATH_MARGIN = 0.1  # nats per frame a ``path`` label allows an exit below the reference


def best_path_tokens(best: np.ndarray, blank_id: int) -> list[int]:
    """CTC's collapse of frame-wise best tokens: repeats merged, then blanks dropped."""
    tokens, previous = [], None
    for token in np.asarray(best).tolist():
        if token != previous and token != blank_id:
            tokens.append(token)
        previous = token
    return tokens


def viterbi_path(log_probs: np.ndarray, tokens: Sequence[int], blank_id: int) -> np.ndarray:
    """(T,) the token (or blank) of every frame on the most likely CTC path of ``tokens`` through
    (T, V) ``log_probs``: the forced alignment a ``path`` label scores exits on (the decoders' own
    :func:`~asr_ee.decoding.align.align_tokens`, every token kept). Raises ValueError where the
    tokens need more frames than there are."""
    from asr_ee.decoding.align import TopKPosteriors, align_tokens

    lp = np.asarray(log_probs)
    tokens = list(tokens)
    if len(tokens) + sum(a == b for a, b in zip(tokens, tokens[1:])) > lp.shape[0]:
        raise ValueError(f"{len(tokens)} tokens need more than {lp.shape[0]} frames")
    posteriors = TopKPosteriors(k=lp.shape[1])
    posteriors.append(lp)
    path = np.full(lp.shape[0], blank_id, np.int64)
    for span in align_tokens(posteriors, tokens, blank=blank_id):
        path[span.start:span.end] = span.token
    return path


def chunk_labels(views: Sequence[ExitView], blank_id: int, *, reference: int | None = None,
                 kind: LabelKind = "frames", path: np.ndarray | None = None,
                 margin: float = DEFAULT_PATH_MARGIN) -> list[float]:
    """Labels of exits 0 .. K-2 on one chunk (``views``: one per exit): 1.0 where the exit's output
    matches exit ``reference``'s (default: the last exit) in the sense of ``kind``. ``path`` (the
    ``path`` kind only): the chunk's frames of the reference's decoded path (:func:`viterbi_path`)."""
    if kind not in LABELS:
        raise ValueError(f"unknown gate label {kind!r}; choose from {', '.join(LABELS)}")
    reference = len(views) - 1 if reference is None else reference
    if not 0 <= reference < len(views):
        raise ValueError(f"reference exit index {reference} out of range for {len(views)} exits")
    if kind == "path":
        if path is None or len(path) != len(views[reference].log_probs):
            raise ValueError("a 'path' label needs the chunk's frames of the reference's decoded path")
        frames = np.arange(len(path))
        target = float(views[reference].log_probs[frames, path].mean()) - margin
    ref = views[reference].argmax
    ref_tokens = best_path_tokens(ref, blank_id) if kind == "tokens" else None
    labels = []
    for k in range(len(views) - 1):
        if k >= reference:
            labels.append(1.0)
        elif kind == "frames":
            labels.append(float(bool(np.array_equal(views[k].argmax, ref))))
        elif kind == "path":
            labels.append(float(views[k].log_probs[frames, path].mean() >= target))
        else:
            labels.append(float(best_path_tokens(views[k].argmax, blank_id) == ref_tokens))
    return labels
