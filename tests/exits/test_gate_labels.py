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
