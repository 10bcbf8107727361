"""The pieces of the evaluation on synthetic posteriors: exit choice per segment, the oracle,
batching by duration, the attention context count, the exit timer and config validation."""

from __future__ import annotations

import pytest
import torch

from asr_ee.config import ConfigError, from_dict
from asr_ee.decoding.ctc import greedy_decode
from asr_ee.evaluation import (EvaluationConfig, ExitTimer, Policy, _Features, choose_exits, duration_batches,
                               segment_bounds, visible_keys)
from asr_ee.exits.criteria import hold_exits, hold_floor
from asr_ee.inputs import Utterance
from asr_ee.models import EarlyExitEncoder, preset
from asr_ee.models.masks import chunk_mask

VOCAB = 5


def _posteriors(best: list[int], sharpness: list[float]) -> torch.Tensor:
    """(T, V) log-posteriors whose frame t has best token ``best[t]`` with logit ``sharpness[t]``."""
    logits = torch.zeros(len(best), VOCAB)
    logits[torch.arange(len(best)), torch.tensor(best)] = torch.tensor(sharpness)
    return logits.log_softmax(-1)


LAST = [1, 1, 2, 2, 3, 3, 0, 0, 4, 4, 1, 1]
EXITS = [
    _posteriors([1, 1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0], [9.0] * 4 + [0.5] * 8),   # agrees on chunk 0, confident there
    _posteriors([1, 1, 2, 2, 3, 3, 0, 0, 2, 2, 2, 2], [9.0] * 8 + [0.5] * 4),   # agrees on chunks 0, 1
    _posteriors(LAST, [9.0] * 12),
]
BOUNDS = segment_bounds(12, 4)


def _tokens() -> dict[str, list[list[int]]]:
    return {"greedy": [greedy_decode(lp) for lp in EXITS]}


def test_segment_bounds() -> None:
    assert segment_bounds(10, None) == [(0, 10)]
    assert segment_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert segment_bounds(0, 4) == []


def test_chunk_oracle_is_per_chunk_and_utterance_oracle_per_utterance() -> None:
    oracle = Policy("oracle")
    assert choose_exits(EXITS, BOUNDS, [oracle], "chunk", _tokens()) == {(oracle, "greedy"): (0, 1, 2)}
    assert choose_exits(EXITS, [(0, 12)], [oracle], "utterance", _tokens()) == {(oracle, "greedy"): (2,)}
    same = {"greedy": [[3, 4], [1], [3, 4]]}  # exit 0 decodes to the last exit's tokens
    assert choose_exits(EXITS, [(0, 12)], [oracle], "utterance", same)[(oracle, "greedy")] == (0,)


def test_criteria_choose_per_chunk() -> None:
    policies = [Policy("confidence", 0.9), Policy("entropy", 0.1), Policy("fixed", 1.0), Policy("patience", 1.0)]
    chosen = choose_exits(EXITS, BOUNDS, policies, "chunk", _tokens())
    assert chosen[(policies[0], "greedy")] == (0, 1, 2)  # the confident exit of each chunk
    assert chosen[(policies[1], "greedy")] == (0, 1, 2)
    assert chosen[(policies[2], "greedy")] == (1, 1, 1)
    assert chosen[(policies[3], "greedy")] == (1, 2, 2)  # two exits agree first on chunk 0 at exit 1
    whole = choose_exits(EXITS, [(0, 12)], policies[:1], "utterance", _tokens())
    assert whole[(policies[0], "greedy")] == (2,)  # no shallow exit is confident over the whole utterance


def test_a_hold_keeps_chunks_as_deep_as_the_criterion_chose_just_before() -> None:
    assert hold_exits([0, 3, 1, 0, 0, 2, 0], 0) == (0, 3, 1, 0, 0, 2, 0)
    assert hold_exits([0, 3, 1, 0, 0, 2, 0], 1) == (0, 3, 3, 1, 0, 2, 2)
    assert hold_exits([0, 3, 1, 0, 0, 2, 0], 2) == (0, 3, 3, 3, 1, 2, 2)
    assert hold_exits([], 2) == ()
    # a stream's floor is the same rule, from the choices it has seen so far
    assert [hold_floor([0, 3, 1, 0, 0, 2, 0][:j], 2) for j in range(7)] == [0, 0, 3, 3, 1, 0, 2]
    # the last exit is confident on chunk 0 only: the criterion picks (2, 0, 0)
    late = [_posteriors([1] * 12, [0.5] * 4 + [9.0] * 8)] * 2 + [_posteriors([1] * 12, [9.0] * 12)]
    policies = [Policy("confidence", 0.9), Policy("confidence", 0.9, 1), Policy("confidence", 0.9, 2)]
    chosen = choose_exits(late, BOUNDS, policies, "chunk", {"greedy": [[1]] * 3})
    assert [chosen[(p, "greedy")] for p in policies] == [(2, 0, 0), (2, 2, 0), (2, 2, 2)]
    # one segment has nothing to hold: held policies are not reported per utterance
    whole = choose_exits(late, [(0, 12)], policies, "utterance", {"greedy": [[1]] * 3})
    assert list(whole) == [(policies[0], "greedy")]


def test_policy_validation() -> None:
    assert Policy("entropy", 0.25).name == "entropy@0.25" and Policy("oracle").name == "oracle"
    assert Policy("gate", 0.9, 2).name == "gate@0.9+hold2"
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="hold"):
            Policy("gate", 0.9, bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="hold"):
        Policy("oracle", None, 1)
    with pytest.raises(ConfigError):
        Policy("oracle", 0.5)
    with pytest.raises(ConfigError):
        Policy("entropy")
    with pytest.raises(ConfigError):
        Policy("magic", 1.0)  # type: ignore[arg-type]


def _feature(frames: int) -> _Features:
    return _Features(0, Utterance(f"u{frames}", None, "x"), torch.zeros(frames, 80), frames * 160)


def test_duration_batches_fill_without_exceeding() -> None:
    items = [_feature(n) for n in (300, 1200, 50, 700, 700, 5000, 90)]
    batches = duration_batches(items, batch_seconds=20.0)  # 2000 padded frames
    assert sorted(f.feats.size(0) for b in batches for f in b) == sorted(f.feats.size(0) for f in items)
    for batch in batches:
        lengths = [f.feats.size(0) for f in batch]
        assert lengths == sorted(lengths, reverse=True)
        assert len(batch) == 1 or max(lengths) * len(batch) <= 2000
    assert [len(b) for b in batches] == [1, 1, 2, 3]  # 5000 alone, 1200, 700+700, 300+90+50


@pytest.mark.parametrize("chunk_frames,left", [(None, None), (4, None), (4, 1), (3, 0), (5, 2)])
def test_visible_keys_count_the_chunk_mask(chunk_frames: int | None, left: int | None) -> None:
    for frames in (1, 7, 13, 40):
        assert visible_keys(frames, chunk_frames, left) == int(chunk_mask(frames, chunk_frames, left).sum())


def test_exit_timer_measures_every_exit_in_order() -> None:
    torch.manual_seed(0)
    model = EarlyExitEncoder(preset("tiny", exit_layers=[1, 2, 3, 4])).eval()
    with ExitTimer(model, torch.device("cpu")) as timer, torch.no_grad():
        model(torch.randn(2, 300, 80), torch.tensor([300, 200]))
        model(torch.randn(1, 100, 80), torch.tensor([100]))
    assert all(0 < a < b for a, b in zip(timer.seconds, timer.seconds[1:]))
    seconds = list(timer.seconds)
    with torch.no_grad():
        model(torch.randn(1, 100, 80), torch.tensor([100]))  # hooks removed: nothing more is counted
    assert timer.seconds == seconds


@pytest.mark.parametrize("bad", [
    {"decodings": []}, {"decodings": ["greedy", "greedy"]}, {"decodings": ["viterbi"]}, {"beam": 0},
    {"chunk_frames": 0}, {"left_context_chunks": 2}, {"attention": "chunk", "left_context_chunks": -1},
    {"criteria": ["entropy", "entropy"]}, {"thresholds": {"oracle": [1.0]}}, {"thresholds": {"entropy": []}}, {"thresholds": {"entropy": ["low"]}},
    {"criteria": ["entropy"], "thresholds": {"confidence": [0.9]}}, {"batch_seconds": 0.0},
    {"hold_chunks": []}, {"hold_chunks": [0, 0]}, {"hold_chunks": [-1]}, {"hold_chunks": [1.5]},
    {"no_such_key": 1},
])
def test_config_rejects(bad: dict) -> None:
    with pytest.raises(ConfigError):
        from_dict(EvaluationConfig, bad)


def test_config_policies() -> None:
    cfg = EvaluationConfig(criteria=["fixed", "entropy", "oracle"], thresholds={"entropy": [0.3]})
    assert [p.name for p in cfg.policies(3)] == ["fixed@0", "fixed@1", "fixed@2", "entropy@0.3", "oracle"]
    cfg = EvaluationConfig(criteria=["fixed", "entropy", "oracle"], thresholds={"entropy": [0.3], "fixed": [1]},
                           hold_chunks=[0, 2])
    assert [p.name for p in cfg.policies(3)] == ["fixed@1", "entropy@0.3", "entropy@0.3+hold2", "oracle"]
    with pytest.raises(ConfigError):
        EvaluationConfig(thresholds={"fixed": [1.5]}).policies(3)
    with pytest.raises(ConfigError):
        EvaluationConfig(thresholds={"fixed": [3]}).policies(3)
