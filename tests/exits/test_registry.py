"""The criterion registry: one list of names that the commands, the streaming config and the
selectors read, with each default threshold defined once."""

from __future__ import annotations

import argparse

import pytest
import torch

from asr_ee.commands import evaluate, transcribe
from asr_ee.config import ConfigError
from asr_ee.exits.criteria import CRITERIA, CRITERION_NAMES, DEFAULT_THRESHOLDS, ExitCriterion, ExitSelector
from asr_ee.streaming import StreamingConfig


def _transcribe_parser() -> argparse.ArgumentParser:
    sub = argparse.ArgumentParser().add_subparsers()
    transcribe.register(sub)
    return sub.choices["transcribe"]


def test_every_registered_criterion_is_a_transcribe_choice_and_unknown_ones_are_refused() -> None:
    parser = _transcribe_parser()
    for name in CRITERION_NAMES:
        assert parser.parse_args(["--criterion", name, "--threshold", "1"]).criterion == name
    with pytest.raises(SystemExit):
        parser.parse_args(["--criterion", "entropyy"])


def test_default_threshold_comes_from_the_registry() -> None:
    from asr_ee.streaming.factory import streaming_config

    args = _transcribe_parser().parse_args(["--criterion", "confidence"])
    config = streaming_config([1, 2, 3], criterion=args.criterion, threshold=args.threshold)
    assert config.criterion == ExitCriterion("confidence", CRITERIA["confidence"].default_threshold)
    assert StreamingConfig().criterion == ExitCriterion("entropy", DEFAULT_THRESHOLDS["entropy"])
    with pytest.raises(ConfigError, match="needs --threshold"):  # fixed has no default
        streaming_config([1, 2, 3], criterion=_transcribe_parser().parse_args(["--criterion", "fixed"]).criterion)


def test_evaluate_help_names_every_criterion() -> None:
    sub = argparse.ArgumentParser().add_subparsers()
    evaluate.register(sub)
    help_text = next(a.help for a in sub.choices["evaluate"]._actions if a.dest == "criteria")
    assert all(name in help_text for name in CRITERION_NAMES)


def test_unknown_kind_is_a_config_error_everywhere() -> None:
    with pytest.raises(ConfigError, match="unknown exit criterion"):
        ExitCriterion("entropyy", 0.1)
    with pytest.raises(ConfigError, match="unknown exit criterion"):
        StreamingConfig.from_dict({"criterion": {"kind": "entropyy", "threshold": 0.1}})


def test_accept_direction_and_integer_thresholds_follow_the_spec() -> None:
    assert ExitCriterion("entropy", 0.1).accepts(0.1) and not ExitCriterion("entropy", 0.1).accepts(0.2)
    assert ExitCriterion("confidence", 0.9).accepts(0.95) and not ExitCriterion("confidence", 0.9).accepts(0.5)
    assert ExitCriterion("patience", 2.7).accepts(2.0)  # counts: compared with int(threshold)
    log_probs = torch.log_softmax(torch.randn(4, 5, generator=torch.Generator().manual_seed(0)), -1)
    selector = ExitSelector(ExitCriterion("fixed", 2))
    assert [selector.decide(k, log_probs) for k in range(4)] == [False, False, True, True]


def test_a_learned_criterion_needs_its_model() -> None:
    assert CRITERIA["gate"].needs_model
    with pytest.raises(ConfigError, match="needs a trained model"):
        ExitSelector(ExitCriterion("gate", 0.5))
