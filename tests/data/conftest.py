"""Fixtures shared by the data tests: the tiny offline recipe, built once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from asr_ee.config import apply_overrides, load_yaml
from asr_ee.data.offline_corpus import OfflineCorpusConfig

REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "recipes" / "offline_tts" / "conf" / "tiny.yaml"


def _offline_config(*overrides: str) -> OfflineCorpusConfig:
    return apply_overrides(load_yaml(OfflineCorpusConfig, TINY_YAML), list(overrides))


@pytest.fixture
def offline_config() -> Callable[..., OfflineCorpusConfig]:
    """``offline_config("key=value", ...)``: the tiny recipe's config with overrides."""
    return _offline_config


@pytest.fixture
def mini_config() -> OfflineCorpusConfig:
    """An even smaller corpus for the stage tests (built several times, in-process)."""
    return _offline_config(*MINI)


MINI = ("train_utterances=6", "dev_utterances=2", "test_utterances=2", "heldout_utterances=2",
        "prepare.num_jobs=1", "prepare.noise.seconds_per_kind=2.0", "prepare.noise.window_seconds=1.0",
        "prepare.tokenizer_vocab_size=40")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output directory of ``asr-ee prepare offline --config recipes/offline_tts/conf/tiny.yaml``."""
    from asr_ee.cli import main

    output_dir = tmp_path_factory.mktemp("tiny") / "corpus"
    assert main(["prepare", "offline", "--config", str(TINY_YAML), "--output-dir",
                 str(output_dir), "--quiet"]) == 0
    return output_dir


def pytest_configure(config: pytest.Config) -> None:
    # lhotse's mel filterbank helpers trip a NumPy 2 deprecation on every extraction
    config.addinivalue_line("filterwarnings", "ignore:__array_wrap__ must accept context:DeprecationWarning")
