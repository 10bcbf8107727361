"""What the gate learns to predict (asr_ee/exits/gate_labels.py): frame-exact or best-path token
agreement with a reference exit, exits at or past the reference always labelled 1."""

from __future__ import annotations

import numpy as np
import pytest

from asr_ee.exits.criteria import ExitView
from asr_ee.exits.gate_labels import best_path_tokens, chunk_labels

BLANK, V = 0, 6


def _view(best: list[int]) -> ExitView:
    """An exit whose frame-wise best tokens are ``best``."""
    log_probs = np.full((len(best), V), -5.0, dtype=np.float32)
    log_probs[np.arange(len(best)), best] = -0.01
    return ExitView(log_probs)


def test_best_path_tokens_merge_repeats_then_drop_blanks() -> None:
    assert best_path_tokens(np.array([0, 3, 3, 0, 3, 4, 4, 0]), BLANK) == [3, 3, 4]
    assert best_path_tokens(np.array([0, 0, 0]), BLANK) == []


def test_frames_and_tokens_labels_against_the_last_exit() -> None:
    views = [_view([0, 3, 3, 0, 0, 4, 0, 0]),   # same tokens, frames one off: tokens yes, frames no
             _view([0, 3, 0, 0, 4, 4, 0, 0]),   # same tokens, other frames: tokens yes, frames no
             _view([0, 3, 0, 0, 0, 0, 0, 0]),   # a token missing: neither
             _view([0, 0, 3, 0, 0, 4, 0, 0])]   # the reference (last exit)
    views.insert(3, _view([0, 0, 3, 0, 0, 4, 0, 0]))  # exit 3: identical frames: both
    assert chunk_labels(views, BLANK, kind="frames") == [0.0, 0.0, 0.0, 1.0]
    assert chunk_labels(views, BLANK, kind="tokens") == [1.0, 1.0, 0.0, 1.0]


def test_a_reference_below_the_last_exit() -> None:
    """Against exit 1: exit 0 is compared with it, exits 1.. are labelled 1 whatever they say."""
    views = [_view([0, 2, 0, 0]), _view([0, 2, 2, 0]), _view([0, 5, 0, 0]), _view([1, 1, 1, 1])]
    assert chunk_labels(views, BLANK, reference=1, kind="tokens") == [1.0, 1.0, 1.0]
    assert chunk_labels(views, BLANK, reference=1, kind="frames") == [0.0, 1.0, 1.0]
    assert chunk_labels(views, BLANK, reference=3, kind="tokens") == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="reference exit index"):
        chunk_labels(views, BLANK, reference=4)
    with pytest.raises(ValueError, match="unknown gate label"):
        chunk_labels(views, BLANK, kind="words")  # type: ignore[arg-type]


def test_viterbi_path_is_the_forced_alignment_of_the_tokens() -> None:
    from asr_ee.exits.gate_labels import viterbi_path

    # frames favour 0 3 3 0 4 0; the tokens [3, 4] force that path (repeats of 3 stay one token)
    log_probs = np.log(np.full((6, V), 0.02))
    for t, token in enumerate([0, 3, 3, 0, 4, 0]):
        log_probs[t, token] = np.log(0.9)
    assert viterbi_path(log_probs, [3, 4], BLANK).tolist() == [0, 3, 3, 0, 4, 0]
    # a repeated token needs a blank between its two copies, even where no frame prefers one
    path = viterbi_path(log_probs, [3, 3], BLANK).tolist()
    assert best_path_tokens(np.array(path), BLANK) == [3, 3] and path[:4] == [0, 3, 3, 0]
    assert viterbi_path(log_probs, [], BLANK).tolist() == [0] * 6
    with pytest.raises(ValueError, match="more than 2 frames"):
        viterbi_path(log_probs[:2], [3, 3], BLANK)


def test_path_labels_follow_the_decoded_path_not_the_best_frames() -> None:
    """An exit whose best frames agree but which holds the decoded path far less likely fails; one
    whose best frames differ but which scores the path nearly as well passes."""
    ref = _view([0, 3, 0, 4])
    path = np.array([0, 3, 0, 4])
    flat = np.log(np.full((4, V), 0.1)).astype(np.float32)
    flat[np.arange(4), path] = np.log(0.5)          # same best frames, flatter: -0.69 a frame against -0.01
    close = ref.log_probs.copy()
    close[3] = np.log(np.full(V, 0.01))
    close[3, 4], close[3, 2] = np.log(0.45), np.log(0.5)  # frame 3 prefers 2, keeps 4 likely
    views = [ExitView(flat), ExitView(close), ref]
    assert chunk_labels(views, BLANK, kind="tokens") == [1.0, 0.0]
    assert chunk_labels(views, BLANK, kind="path", path=path, margin=0.3) == [0.0, 1.0]
    assert chunk_labels(views, BLANK, kind="path", path=path, margin=1.0) == [1.0, 1.0]
    with pytest.raises(ValueError, match="decoded path"):
        chunk_labels(views, BLANK, kind="path")
