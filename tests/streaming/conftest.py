"""Fixtures of the streaming tests (helpers live in ``streaming_helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr_ee.data.tokenizer import train_tokenizer
from asr_ee.pretrained import Pretrained
from streaming_helpers import SENTENCES, make_pretrained


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tokenizer(SENTENCES * 20, tmp_path_factory.mktemp("tok") / "bpe", vocab_size=32)


@pytest.fixture
def tiny_pretrained(tokenizer_path: Path) -> Pretrained:
    return make_pretrained(tokenizer_path)


@pytest.fixture(autouse=True)
def single_thread(one_torch_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
