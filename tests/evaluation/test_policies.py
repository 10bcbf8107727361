"""Exit policies: each criterion's choice checked against an independent walk over the exits (the
streaming way: ``ExitSelector.decide`` until it accepts), on posteriors from a forward of each
utterance alone; and the cases whose outcome is known in advance (fixed, oracle, always, never)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from asr_ee.decoding.ctc import greedy_decode, prefix_beam_search
from asr_ee.decoding.wer import WordErrors, word_errors
from asr_ee.evaluation import EvaluationConfig, EvaluationResult, charged_exits, evaluate
from asr_ee.exits.criteria import ExitCriterion, ExitSelector
from asr_ee.features import DEFAULT_TAIL_SILENCE_MS, make_fbank, tail_silence
from asr_ee.inputs import Utterance, from_cuts
from asr_ee.models import EarlyExitEncoder, build_encoder, preset
from asr_ee.models.flops import exit_costs
from asr_ee.pretrained import Pretrained, load_pretrained

CHUNK_FRAMES = 8
KINDS = ("entropy", "confidence", "confidence_min")
ALWAYS = {"entropy": 1.0, "confidence": 0.0, "confidence_min": 0.0, "patience": 0.0}
NEVER = {"entropy": -1.0, "confidence": 1.01, "confidence_min": 1.01, "patience": 99.0}


@dataclass
class Evaluated:
    pretrained: Pretrained
    utterances: list[Utterance]
    posteriors: list[list[torch.Tensor]]  # per utterance, per exit (T', V), from a forward of it alone
    middle: dict[tuple[str, str], float]  # per (criterion, granularity): a threshold that splits the exits
    result: EvaluationResult
    attention: str


def _alone(pretrained: Pretrained, utt: Utterance, chunk: int | None) -> list[torch.Tensor]:
    samples = utt.load()
    if chunk is not None:  # under the chunk mask, evaluation ends an input as a stream does
        samples = torch.cat([samples, tail_silence(DEFAULT_TAIL_SILENCE_MS)])
    feats = torch.from_numpy(make_fbank().extract(samples.numpy(), 16000))[None]  # (1, T, F)
    with torch.no_grad():
        outs, lens = pretrained.encoder(feats, torch.tensor([feats.size(1)]), chunk_frames=chunk)
    return [o[0, : lens[0]] for o in outs]


def _bounds(num_frames: int, granularity: str) -> list[tuple[int, int]]:
    step = num_frames if granularity == "utterance" else CHUNK_FRAMES
    return [(s, min(s + step, num_frames)) for s in range(0, max(num_frames, 1), max(step, 1))]


def _walk(criterion: ExitCriterion, exit_lps: list[torch.Tensor]) -> int:
    """Where a stream stops: the first exit whose ``decide`` is True, else the last."""
    selector = ExitSelector(criterion)
    for k, lp in enumerate(exit_lps):
        if selector.decide(k, lp[None]):  # (1, T, V), as ``infer`` passes it
            return k
    return len(exit_lps) - 1


def _splitting_threshold(kind: str, posteriors: list[list[torch.Tensor]], granularity: str) -> float:
    """A threshold, far from every observed value, at which a streaming walk stops at more than one
    exit: the midpoint of the widest such gap between the criterion's sorted values."""
    segments = [[lp[s:e] for lp in exit_lps] for exit_lps in posteriors
                for s, e in _bounds(exit_lps[0].size(0), granularity)]
    ordered = sorted(v for seg in segments for v in _values(kind, seg))
    candidates = sorted(((b - a, (a + b) / 2) for a, b in zip(ordered, ordered[1:]) if b - a > 1e-4), reverse=True)
    for _, threshold in candidates:
        criterion = ExitCriterion(kind, threshold)  # type: ignore[arg-type]
        if len({_walk(criterion, seg) for seg in segments}) > 1:
            return threshold
    raise AssertionError(f"no {kind} threshold splits the exits of this model")


@pytest.fixture(scope="module", params=["full", "chunk"])
def evaluated(request: pytest.FixtureRequest, eval_model: Path, eval_data) -> Evaluated:
    attention = request.param
    pretrained = load_pretrained(eval_model)
    utterances = from_cuts(eval_data.cuts)
    mask = CHUNK_FRAMES if attention == "chunk" else None
    posteriors = [_alone(pretrained, u, mask) for u in utterances]
    middle = {(kind, g): _splitting_threshold(kind, posteriors, g) for kind in KINDS for g in ("utterance", "chunk")}
    thresholds = {k: [ALWAYS[k], middle[(k, "utterance")], middle[(k, "chunk")], NEVER[k]] for k in KINDS}
    thresholds["patience"] = [ALWAYS["patience"], 1.0, NEVER["patience"]]
    cfg = EvaluationConfig(decodings=["greedy", "beam"], chunk_frames=CHUNK_FRAMES, attention=attention,
                           thresholds=thresholds, batch_seconds=6.0)  # several batches
    result = evaluate(pretrained.encoder, pretrained.tokenizer, utterances, cfg)
    return Evaluated(pretrained, utterances, posteriors, middle, result, attention)


def _values(kind: str, exit_lps: list[torch.Tensor]) -> list[float]:
    selector = ExitSelector(ExitCriterion(kind, 0.0))  # type: ignore[arg-type]
    for k, lp in enumerate(exit_lps):
        selector.decide(k, lp)
    return selector.values


def _rows(ev: Evaluated, criterion: str, **match: object) -> list[dict]:
    return [r for r in ev.result.summary["policies"] if r["criterion"] == criterion
            and all(r[k] == v for k, v in match.items())]


def _exit_row(ev: Evaluated, decoding: str, index: int) -> dict:
    return next(r for r in ev.result.summary["per_exit"] if r["decoding"] == decoding and r["exit_index"] == index)


def test_model_exits_disagree(evaluated: Evaluated) -> None:
    """Guards the tests below: on this model the exits' hypotheses and WERs differ."""
    wers = {_exit_row(evaluated, "greedy", k)["wer"] for k in range(4)}
    assert len(wers) > 1
    assert all(len(set(u.hypotheses["greedy"])) > 1 for u in evaluated.result.utterances)


@pytest.mark.parametrize("granularity", ["utterance", "chunk"])
@pytest.mark.parametrize("decoding", ["greedy", "beam"])
def test_fixed_exit_is_that_exit(evaluated: Evaluated, granularity: str, decoding: str) -> None:
    costs = exit_costs(evaluated.pretrained.encoder.cfg, evaluated.result.summary["settings"]["context_frames"])
    for k, layer in enumerate([1, 2, 3, 4]):
        (row,) = _rows(evaluated, "fixed", threshold=float(k), granularity=granularity, decoding=decoding)
        exit_row = _exit_row(evaluated, decoding, k)
        assert {f: row[f] for f in ("wer", "ins", "del", "sub", "num_words")} == \
               {f: exit_row[f] for f in ("wer", "ins", "del", "sub", "num_words")}
        assert row["avg_exit_layer"] == pytest.approx(layer)
        assert row["compute_fraction"] == pytest.approx(exit_row["compute_fraction"])
        assert row["compute_fraction"] == pytest.approx(costs[k].compute_fraction, abs=1e-5)


@pytest.mark.parametrize("granularity", ["utterance", "chunk"])
def test_oracle_matches_the_last_exit_with_greedy(evaluated: Evaluated, granularity: str) -> None:
    (row,) = _rows(evaluated, "oracle", granularity=granularity, decoding="greedy")
    last = _exit_row(evaluated, "greedy", 3)
    assert (row["wer"], row["ins"], row["del"], row["sub"]) == (last["wer"], last["ins"], last["del"], last["sub"])
    assert row["compute_fraction"] <= last["compute_fraction"]
    (beam_row,) = _rows(evaluated, "oracle", granularity="utterance", decoding="beam")
    assert beam_row["wer"] == _exit_row(evaluated, "beam", 3)["wer"]


def test_oracle_takes_the_shallowest_exit_equal_to_the_last(evaluated: Evaluated) -> None:
    for utt, exit_lps in zip(evaluated.result.utterances, evaluated.posteriors):
        record = utt.to_dict([1, 2, 3, 4])
        hyps = record["hypotheses"]["greedy"]
        assert record["choices"]["utterance"]["oracle/greedy"] == 1 + hyps.index(hyps[-1])
        best = [lp.argmax(-1) for lp in exit_lps]
        expected = [1 + next(k for k in range(4) if torch.equal(best[k][s:e], best[3][s:e]))
                    for s, e in _bounds(len(best[0]), "chunk")]
        assert record["choices"]["chunk"]["oracle/greedy"] == expected


@pytest.mark.parametrize("granularity", ["utterance", "chunk"])
@pytest.mark.parametrize("kind", ["entropy", "confidence", "confidence_min", "patience"])
def test_always_accepting_picks_the_first_exit_and_never_the_last(evaluated: Evaluated, kind: str,
                                                                   granularity: str) -> None:
    for threshold, k in ((ALWAYS[kind], 0), (NEVER[kind], 3)):
        for decoding in ("greedy", "beam"):
            (row,) = _rows(evaluated, kind, threshold=threshold, granularity=granularity, decoding=decoding)
            exit_row = _exit_row(evaluated, decoding, k)
            assert row["avg_exit_layer"] == pytest.approx(k + 1)
            assert row["compute_fraction"] == pytest.approx(exit_row["compute_fraction"])
            assert row["wer"] == exit_row["wer"]


@pytest.mark.parametrize("granularity", ["utterance", "chunk"])
@pytest.mark.parametrize("kind", KINDS)
def test_choices_match_a_streaming_walk(evaluated: Evaluated, kind: str, granularity: str) -> None:
    """At a threshold inside the observed values, every utterance/chunk stops where a stream would,
    the hypothesis is the decode of the spliced posteriors, and compute is frame-weighted (under the
    chunk mask, with the catch-up a RECOMPUTE stream pays)."""
    threshold = evaluated.middle[(kind, granularity)]
    criterion = ExitCriterion(kind, threshold)  # type: ignore[arg-type]
    label = f"{kind}@{threshold:g}"
    costs = [r["compute_fraction"] for r in evaluated.result.summary["per_exit"] if r["decoding"] == "greedy"]
    frames = compute = 0.0
    errors = {"greedy": WordErrors(), "beam": WordErrors()}
    all_choices: set[int] = set()
    for utt, exit_lps in zip(evaluated.result.utterances, evaluated.posteriors):
        bounds = _bounds(exit_lps[0].size(0), granularity)
        chosen = [_walk(criterion, [lp[s:e] for lp in exit_lps]) for s, e in bounds]
        got = utt.to_dict([1, 2, 3, 4])["choices"][granularity][label]
        assert (got if granularity == "chunk" else [got]) == [k + 1 for k in chosen]
        all_choices |= set(chosen)
        spliced = torch.cat([exit_lps[k][s:e] for k, (s, e) in zip(chosen, bounds)])
        tok = evaluated.pretrained.tokenizer
        errors["greedy"] += word_errors(utt.reference, tok.decode(greedy_decode(spliced)))
        beam = evaluated.result.summary["settings"]["beam"]
        errors["beam"] += word_errors(utt.reference, tok.decode(prefix_beam_search(spliced, beam=beam)))
        frames += sum(e - s for s, e in bounds)
        settings = evaluated.result.summary["settings"]
        charged = charged_exits(tuple(chosen), settings["left_context_chunks"]) \
            if granularity == "chunk" and settings["attention"] == "chunk" else chosen
        compute += sum((e - s) * costs[k] for k, (s, e) in zip(charged, bounds))
    assert len(all_choices) > 1, "the threshold should split the choices"
    for decoding in ("greedy", "beam"):
        (row,) = _rows(evaluated, kind, threshold=threshold, granularity=granularity, decoding=decoding)
        assert row["compute_fraction"] == pytest.approx(compute / frames, abs=1e-5)
        assert (row["ins"], row["del"], row["sub"]) == (errors[decoding].ins, errors[decoding].dels,
                                                       errors[decoding].subs)


def test_per_exit_errors_are_the_sum_over_utterances(evaluated: Evaluated) -> None:
    for decoding in ("greedy", "beam"):
        for k in range(4):
            total = sum((word_errors(u.reference, u.hypotheses[decoding][k]) for u in evaluated.result.utterances),
                        WordErrors())
            row = _exit_row(evaluated, decoding, k)
            assert (row["ins"], row["del"], row["sub"], row["num_words"]) == \
                   (total.ins, total.dels, total.subs, total.num_words)
            assert row["wer"] == pytest.approx(total.wer, abs=1e-3)


def test_greedy_hypotheses_are_those_of_each_utterance_alone(evaluated: Evaluated) -> None:
    """Batching (padding, sorting by length) changes nothing, under either attention mask."""
    tok = evaluated.pretrained.tokenizer
    for utt, exit_lps in zip(evaluated.result.utterances, evaluated.posteriors):
        assert utt.hypotheses["greedy"] == [tok.decode(greedy_decode(lp)) for lp in exit_lps]


def test_pareto_rows_are_exactly_the_undominated(evaluated: Evaluated) -> None:
    rows = [r for r in evaluated.result.summary["policies"] if r["criterion"] != "oracle"
            and r["granularity"] == "chunk" and r["decoding"] == "greedy"]

    def dominated(r: dict) -> bool:
        return any(o["wer"] <= r["wer"] and o["compute_fraction"] <= r["compute_fraction"]
                   and (o["wer"], o["compute_fraction"]) != (r["wer"], r["compute_fraction"]) for o in rows)

    assert any(r["pareto"] for r in rows)
    assert all(r["pareto"] == (not dominated(r)) for r in rows)


def test_policy_rows_carry_the_change_against_the_last_exit(evaluated: Evaluated) -> None:
    """``wer_change`` is recomputed here from the per-utterance outcomes; the fixed last exit costs 0."""
    from asr_ee.evaluation.summary import relative_change_ci

    utterances = evaluated.result.utterances
    for row in evaluated.result.summary["policies"]:
        errors = [next(o.errors.errors for o in u.outcomes if o.policy.kind == row["criterion"]
                       and o.policy.threshold == row["threshold"] and o.policy.hold == row["hold_chunks"]
                       and o.granularity == row["granularity"] and o.decoding == row["decoding"]) for u in utterances]
        last = [u.exit_errors[row["decoding"]][-1].errors for u in utterances]
        expected = relative_change_ci(errors, last)
        if expected is None:
            assert row["wer_change"] is None and row["wer_change_ci95"] is None
            continue
        assert row["wer_change"] == pytest.approx(expected[0], abs=1e-3)
        assert row["wer_change_ci95"] == pytest.approx(list(expected[1:]), abs=1e-3)
        assert row["wer_change_ci95"][0] <= row["wer_change"] <= row["wer_change_ci95"][1]
    last_exit = len(evaluated.result.summary["exit_layers"]) - 1
    fixed_last = _rows(evaluated, "fixed", threshold=last_exit, granularity="utterance", decoding="greedy")
    assert fixed_last and fixed_last[0]["wer_change"] == 0.0 and fixed_last[0]["wer_change_ci95"] == [0.0, 0.0]


def test_relative_change_ci_is_a_paired_bootstrap() -> None:
    from asr_ee.evaluation.summary import relative_change_ci

    baseline = [2, 0, 1, 3, 0, 1, 2, 1] * 10
    assert relative_change_ci(baseline, baseline) == (0.0, 0.0, 0.0)  # paired: no noise of its own
    worse = [e + 1 for e in baseline]  # one more error on every utterance: +80 on 100
    change, low, high = relative_change_ci(worse, baseline)
    assert change == pytest.approx(80.0) and low < 80.0 < high and low > 50.0
    noisy = [e + (1 if i % 2 else -1) * (e > 0) for i, e in enumerate(baseline)]  # as many errors, moved around
    change, low, high = relative_change_ci(noisy, baseline)
    assert low < change < high and low < 0 < high  # the split cannot tell them apart
    assert relative_change_ci([1, 2], [0, 0]) is None
    assert relative_change_ci(worse, baseline, seed=1) != relative_change_ci(worse, baseline, seed=2)
    with pytest.raises(ValueError, match="one length"):
        relative_change_ci([1, 2, 3], [1, 2])


def test_splitformer_models_evaluate(eval_model: Path, eval_data) -> None:
    """The exit timer and the batched forward also serve Splitformer encoders (parallel branches)."""
    tokenizer = load_pretrained(eval_model).tokenizer
    torch.manual_seed(1)
    model = build_encoder(preset("tiny-splitformer", vocab_size=tokenizer.vocab_size))
    cfg = EvaluationConfig(attention="chunk", chunk_frames=4, left_context_chunks=2, criteria=["fixed", "oracle"])
    summary = evaluate(model, tokenizer, from_cuts(eval_data.cuts), cfg).summary
    assert summary["num_evaluated"] == 4
    seconds = [r["encoder_seconds"] for r in summary["per_exit"]]
    assert len(seconds) == 2 and 0 < seconds[0] < seconds[1]
    fixed = [r for r in summary["policies"] if r["criterion"] == "fixed" and r["granularity"] == "chunk"]
    assert [r["wer"] for r in fixed] == [r["wer"] for r in summary["per_exit"]]


def test_charged_exits_equal_what_a_recompute_stream_runs() -> None:
    """Evaluation's per-chunk compute accounting equals the blocks the streaming encoder runs
    (with lazy recomputation) for the same per-chunk exits."""
    from asr_ee.models.encoder import SkipPolicy

    torch.manual_seed(0)
    model = EarlyExitEncoder(preset("tiny")).eval()
    chunk, left = 4, 2
    exits = (0, 0, 1, 0, 1, 1, 0, 0, 0, 1)
    feats = torch.randn(1, 4 * chunk * len(exits) + 3, 80)
    state, pos, blocks = model.initial_state(), 0, 0.0
    for i, k in enumerate(exits):
        step = 4 * chunk + (3 if i == 0 else 0)
        out = model.infer(feats[:, pos:pos + step], state, left_context_frames=chunk * left, max_exit=k,
                          skip_policy=SkipPolicy.RECOMPUTE)
        pos += step
        blocks += out.blocks_run
    assert blocks == sum(k + 1 for k in charged_exits(exits, left))
    assert charged_exits(exits, left) == [1, 1, 1, 1, 1, 1, 0, 1, 1, 1]
    assert charged_exits(exits, 0) == list(exits)
