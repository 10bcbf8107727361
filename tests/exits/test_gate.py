"""The learned exit gate (asr_ee/exits/gate.py): its features on a tiny seeded model, a gate that
must send uncertain chunks deeper, a gate of another model refused, the compute calibration, and one
decision per chunk whether evaluation or a stream takes it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_ee.commands.train_gate import collect_examples
from asr_ee.config import ConfigError
from asr_ee.data.tokenizer import Tokenizer, train_tokenizer
from asr_ee.evaluation import EvaluationConfig, Policy, charged_exits, choose_exits, evaluate
from asr_ee.evaluation.batching import ExitHidden
from asr_ee.exits.criteria import ExitCriterion, ExitSelector, ExitView
from asr_ee.exits.fingerprint import model_fingerprint
from asr_ee.exits.gate import FEATURES, ExitGate, chunk_examples, chunk_views, gate_path, load_gate
from asr_ee.exits.gate_fit import calibrate, first_exits, fit_gate
from asr_ee.features import SAMPLE_RATE, make_fbank
from asr_ee.inputs import Utterance
from asr_ee.models import EarlyExitEncoder, build_encoder, preset
from asr_ee.pretrained import Pretrained
from asr_ee.streaming.config import SkipPolicy, StreamingConfig
from asr_ee.streaming.recognizer import Recognizer

CHUNK, LEFT = 4, 2
SENTENCES = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine",
             "early exits save compute on small devices", "speech recognition runs chunk by chunk"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return Tokenizer(train_tokenizer(SENTENCES * 20, tmp_path_factory.mktemp("tok") / "bpe", vocab_size=32))


@pytest.fixture(autouse=True)
def single_thread(one_torch_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""


def _encoder(vocab_size: int, seed: int = 0) -> EarlyExitEncoder:
    torch.manual_seed(seed)
    return build_encoder(preset("tiny", vocab_size=vocab_size, exit_layers=[1, 2, 3, 4])).eval()


def _speech(seconds: float, seed: int) -> torch.Tensor:
    """Harmonic bursts and noise: a random model's posteriors change from frame to frame."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SAMPLE_RATE), dtype=torch.float64) / SAMPLE_RATE
    phase = 2 * math.pi * torch.cumsum(120 + 80 * torch.sin(2 * math.pi * 0.7 * t), 0) / SAMPLE_RATE
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 6)) * (torch.sin(2 * math.pi * 1.3 * t) > -0.3)
    return (0.3 * voiced + 0.05 * torch.randn(t.numel(), generator=g, dtype=torch.float64)).float()


def _offline(encoder: EarlyExitEncoder, samples: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per exit, (T', V) log-posteriors and (T', D) hidden states of the forward under the chunk mask."""
    feats = torch.from_numpy(make_fbank().extract(samples.numpy(), SAMPLE_RATE))[None]  # (1, T, F)
    with ExitHidden(encoder) as capture, torch.no_grad():
        outs, lens = encoder(feats, torch.tensor([feats.size(1)]), chunk_frames=CHUNK, left_context_chunks=LEFT)
        hidden = capture.take([int(lens[0])])[0]
    return [o[0, :lens[0]] for o in outs], hidden


def _trained_gate(encoder: EarlyExitEncoder, blank_id: int) -> ExitGate:
    """A gate fitted on the model's own chunks of a few synthetic utterances."""
    examples = []
    for seed in range(3):
        lps, hidden = _offline(encoder, _speech(4.0, seed))
        examples += [chunk_examples(chunk_views(lps, hidden, s, min(s + CHUNK, lps[0].size(0))), blank_id)
                     for s in range(0, lps[0].size(0), CHUNK)]
    x, y = np.stack([f for f, _ in examples]), np.stack([l for _, l in examples])
    y[0] = 1 - y[0]  # both classes at every exit, whatever the random model does
    return fit_gate(x, y, exit_layers=encoder.cfg.exit_layers, blank_id=blank_id,
                    fingerprint=model_fingerprint(encoder))


def test_features_of_a_chunk(tokenizer: Tokenizer) -> None:
    encoder = _encoder(tokenizer.vocab_size)
    lps, hidden = _offline(encoder, _speech(2.0, 0))
    assert len(hidden) == 4 and hidden[0].shape == (lps[0].size(0), encoder.cfg.d_model)
    views = chunk_views(lps, hidden, 0, CHUNK)
    features, labels = chunk_examples(views, tokenizer.blank_id)
    assert features.shape == (3, len(FEATURES)) and labels.shape == (3,)
    named = [dict(zip(FEATURES, row.tolist())) for row in features]
    assert all(0.0 <= f["entropy"] <= 1.0 and 0.0 <= f["margin"] <= 1.0 for f in named)
    assert named[0]["hidden_change"] == 0.0 and named[0]["entropy_change"] == 0.0  # no earlier exit
    assert all(f["hidden_change"] > 0.0 for f in named[1:])
    for k in range(3):
        assert labels[k] == float(bool((views[k].argmax == views[-1].argmax).all()))


def _peaked(tokens: torch.Tensor, vocab: int, sharpness: float, g: torch.Generator) -> torch.Tensor:
    logits = torch.randn(tokens.numel(), vocab, generator=g) + sharpness * torch.nn.functional.one_hot(tokens, vocab)
    return logits.log_softmax(-1)


def test_uncertain_chunks_go_deeper() -> None:
    """Trained where confident exits agree with the last and uncertain ones do not, the gate stops a
    confident chunk at the first exit and sends an uncertain one on."""
    g, vocab = torch.Generator().manual_seed(0), 16
    examples = []
    for i in range(200):
        tokens = torch.randint(0, vocab, (CHUNK,), generator=g)
        sure = i % 2 == 0
        views = [ExitView(_peaked(tokens, vocab, 8.0 if sure else 0.3, g)) for _ in range(2)]
        views.append(ExitView(_peaked(tokens, vocab, 8.0, g)))
        examples.append(chunk_examples(views, 0))
    x, y = np.stack([f for f, _ in examples]), np.stack([l for _, l in examples])
    assert 0.0 < float(y[:, 0].mean()) < 1.0
    gate = fit_gate(x, y, exit_layers=[1, 2, 3], blank_id=0, fingerprint="x")
    tokens = torch.randint(0, vocab, (CHUNK,), generator=g)
    for sharpness, expected in ((8.0, 0), (0.3, 2)):
        selector = ExitSelector(ExitCriterion("gate", 0.5), model=gate)
        chosen = next((k for k in range(2) if selector.decide(k, _peaked(tokens, vocab, sharpness, g))), 2)
        assert chosen == expected
    sure = gate.value(0, ExitView(_peaked(tokens, vocab, 8.0, g)), [])
    unsure = gate.value(0, ExitView(_peaked(tokens, vocab, 0.3, g)), [])
    assert sure > 0.9 > 0.1 > unsure


def test_a_gate_of_another_model_is_refused(tokenizer: Tokenizer, tmp_path: Path) -> None:
    mine, other = _encoder(tokenizer.vocab_size, seed=0), _encoder(tokenizer.vocab_size, seed=1)
    model_path = tmp_path / "model.pt"
    assert gate_path(model_path) == tmp_path / "model.gate.json"
    with pytest.raises(ConfigError, match="train-gate"):
        load_gate(gate_path(model_path), mine)
    gate = _trained_gate(mine, tokenizer.blank_id)
    gate.save(gate_path(model_path))
    loaded = load_gate(gate_path(model_path), mine)
    assert np.array_equal(loaded.weight, gate.weight) and loaded.fingerprint == model_fingerprint(mine)
    with pytest.raises(ConfigError, match="another model"):
        load_gate(gate_path(model_path), other)
    config = StreamingConfig(chunk_frames=CHUNK, left_context_chunks=LEFT, criterion=ExitCriterion("gate", 0.5),
                             controller=None, endpoint=None)
    with pytest.raises(ConfigError, match="another model"):
        Recognizer(Pretrained(other, tokenizer, model_path, {}), config)
    assert Recognizer(Pretrained(mine, tokenizer, model_path, {}), config).gate is not None


def test_calibration_turns_a_budget_into_a_threshold() -> None:
    probs = [torch.tensor([[0.9, 0.95], [0.2, 0.6], [0.1, 0.3]]), torch.tensor([[0.5, 0.99]])]
    assert first_exits(probs[0], 0.5, top=2).tolist() == [0, 1, 2]
    assert first_exits(probs[0], 0.5, top=1).tolist() == [0, 1, 1]
    fractions, layers = [0.3, 0.6, 1.0], [1, 2, 3]
    rows = calibrate(probs, [[4, 4, 4], [4]], fractions, layers, lambda e: charged_exits(e, None),
                     thresholds=[0.0, 0.5, 0.9, 1.0])
    computes = [c for _, c, _ in rows[2]]
    assert computes == sorted(computes) and computes[0] == pytest.approx(0.3) and computes[-1] == pytest.approx(1.0)
    # threshold 0.5: chunks stop at 0, 1, 2 and 0; recomputing streams charge the deepest later chunk
    assert rows[2][1][1] == pytest.approx((1.0 + 1.0 + 1.0 + 0.3) / 4)
    gate = ExitGate([1, 2, 3], 0, *(torch.zeros(2, len(FEATURES)),) * 3, torch.zeros(2), "x", calibration=rows)
    assert [gate.threshold_for_budget(b) for b in (0.3, 0.85, 0.9, 1.0)] == [0.0, 0.5, 0.9, 1.0]
    with pytest.raises(ConfigError, match="cheapest"):
        gate.threshold_for_budget(0.2)


def _threshold_between(gate: ExitGate, lps: list[torch.Tensor], hidden: list[torch.Tensor]) -> float:
    """A threshold halfway in the widest gap between chunks' exit-0 probabilities (their middle half)."""
    values = sorted(gate.value(0, chunk_views(lps, hidden, s, s + CHUNK)[0], [])
                    for s in range(0, lps[0].size(0) - CHUNK + 1, CHUNK))
    gaps = [(values[i + 1] - values[i], i) for i in range(len(values) // 4, 3 * len(values) // 4)]
    _, i = max(gaps)
    return (values[i] + values[i + 1]) / 2


@pytest.mark.parametrize("hold", [0, 2])
def test_stream_and_evaluation_take_the_same_exit_per_chunk(tokenizer: Tokenizer, tmp_path: Path, hold: int) -> None:
    encoder = _encoder(tokenizer.vocab_size)
    gate = _trained_gate(encoder, tokenizer.blank_id)
    audio = _speech(6.0, seed=11)
    lps, hidden = _offline(encoder, audio)
    threshold = _threshold_between(gate, lps, hidden)
    bounds = [(s, min(s + CHUNK, lps[0].size(0))) for s in range(0, lps[0].size(0), CHUNK)]
    policies = [Policy("gate", threshold), Policy("gate", threshold, hold)]
    chosen = choose_exits(lps, bounds, policies, "chunk", {"greedy": [[]] * 4}, hidden, gate)
    own, held = chosen[(policies[0], "greedy")], chosen[(policies[1], "greedy")]
    layers = encoder.cfg.exit_layers
    expected = [layers[k] for k in held]
    assert len(set(expected)) >= 2
    if hold:
        assert held != own  # the hold changes some chunk's exit: the comparison below tests it

    model_path = tmp_path / "model.pt"
    gate.save(gate_path(model_path))  # the stream reads the gate beside the model
    config = StreamingConfig(chunk_frames=CHUNK, left_context_chunks=LEFT, criterion=ExitCriterion("gate", threshold),
                             hold_chunks=hold, controller=None, endpoint=None, skip_policy=SkipPolicy.RECOMPUTE,
                             tail_silence_ms=0.0)
    recognizer = Recognizer(Pretrained(encoder, tokenizer, model_path, {}), config)
    stream = recognizer.create_stream()
    stream.accept_waveform(SAMPLE_RATE, audio)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    streamed = [c.exit_layer for c in recognizer.result(stream).chunks]
    full = len(lps[0]) // CHUNK  # whole chunks: the stream's last one may be cut differently
    assert streamed[:full] == expected[:full]


def test_evaluation_reports_the_gate(tokenizer: Tokenizer) -> None:
    encoder = _encoder(tokenizer.vocab_size)
    gate = _trained_gate(encoder, tokenizer.blank_id)
    audio = [_speech(3.0, seed=s) for s in (20, 21)]
    utterances = [Utterance(f"u{i}", "a stitch in time", "-", loader=lambda a=a: a) for i, a in enumerate(audio)]
    cfg = EvaluationConfig(chunk_frames=CHUNK, attention="chunk", left_context_chunks=LEFT, criteria=["gate"],
                           thresholds={"gate": [0.0, 1.01]})
    with pytest.raises(ConfigError, match="gate"):
        evaluate(encoder, tokenizer, utterances, cfg)
    result = evaluate(encoder, tokenizer, utterances, cfg, gate=gate)
    rows = {(r["threshold"], r["granularity"]): r for r in result.summary["policies"]}
    first, last = result.summary["per_exit"][0], result.summary["per_exit"][-1]
    assert rows[(0.0, "chunk")]["compute_fraction"] == pytest.approx(first["compute_fraction"])
    assert rows[(1.01, "chunk")]["compute_fraction"] == pytest.approx(last["compute_fraction"])
    assert rows[(1.01, "chunk")]["wer"] == last["wer"]
    # training examples come from the same forward evaluation runs
    features, labels, frames, context, failed = collect_examples(encoder, utterances, cfg, tokenizer.blank_id)
    assert failed == 0 and len(features) == 2 and features[0].shape[1:] == (3, len(FEATURES))
    assert 0 < sum(map(sum, frames)) <= sum(r.encoder_frames for r in result.utterances)  # less the tail silence
    assert labels[0].shape == features[0].shape[:2] and context > CHUNK
    # path labels: the last exit's beam decoding, force-aligned, scored per chunk and exit
    from asr_ee.commands.train_gate import chunk_views_per_utterance, decoded_path, read_as_streams_end
    from asr_ee.exits.gate_labels import chunk_labels

    _, path_labels, path_frames, _, _ = collect_examples(encoder, utterances, cfg, tokenizer.blank_id, label="path",
                                                         margin=0.05)
    assert path_frames == frames and [y.shape for y in path_labels] == [y.shape for y in labels]
    _, counts, views, _ = next(chunk_views_per_utterance(encoder, read_as_streams_end(utterances[:1])[0], cfg))
    whole = decoded_path(views, 3, tokenizer.blank_id, cfg, None)
    assert len(whole) == sum(counts)
    by_hand = [chunk_labels(v, tokenizer.blank_id, kind="path", path=whole[s:s + n], margin=0.05)
               for v, s, n in zip(views, np.cumsum([0] + counts[:-1]), counts)]
    assert np.array_equal(path_labels[0], np.array(by_hand, np.float32))
    loose = collect_examples(encoder, utterances, cfg, tokenizer.blank_id, label="path", margin=50.0)[1]
    assert all(bool((y == 1).all()) for y in loose)  # a margin wider than any gap passes every exit


def test_train_gate_command_writes_a_gate_beside_the_model(tokenizer: Tokenizer, tmp_path: Path) -> None:
    """`asr-ee train-gate` on an exported tiny model and a cut manifest: the gate lands beside the
    model, belongs to it, and its calibration turns a budget into a threshold."""
    import soundfile as sf
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

    from asr_ee.checkpoint import export_model
    from asr_ee.cli import main
    from asr_ee.config import to_dict
    from asr_ee.pretrained import load_pretrained

    encoder = _encoder(tokenizer.vocab_size)
    model_path = tmp_path / "model.pt"
    export_model({"encoder_config": to_dict(encoder.cfg), "model": encoder.state_dict()}, tokenizer.path, model_path,
                 half=False)
    cuts = []
    for i in range(3):
        wav = tmp_path / f"u{i}.wav"
        sf.write(wav, _speech(2.0 + i, seed=30 + i).numpy(), SAMPLE_RATE)
        recording = Recording.from_file(wav, recording_id=f"u{i}")
        cuts.append(MonoCut(id=f"u{i}", start=0.0, duration=recording.duration, channel=0, recording=recording,
                            supervisions=[SupervisionSegment(id=f"u{i}", recording_id=f"u{i}", start=0.0,
                                                             duration=recording.duration, text=SENTENCES[i])]))
    CutSet.from_cuts(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    assert main(["train-gate", "--model", str(model_path), "--cuts", str(tmp_path / "cuts.jsonl.gz"),
                 "--chunk-frames", str(CHUNK), "--left-context-chunks", str(LEFT), "--threads", "1"]) == 0
    gate = load_gate(gate_path(model_path), load_pretrained(model_path).encoder)
    assert gate.info["utterances"] == 3 and gate.info["chunks"] > 10
    assert set(gate.calibration) == {0, 1, 2, 3}
    computes = [c for _, c, _ in gate.calibration[3]]
    assert computes == sorted(computes) and computes[-1] == pytest.approx(1.0)
    assert 0.0 <= gate.threshold_for_budget(1.0) <= 1.0
    assert main(["train-gate", "--model", str(model_path), "--cuts", str(tmp_path / "missing.jsonl.gz")]) == 2
    assert gate.label == "tokens@4"  # the default: best-path tokens against the last exit (no ceiling stored)
    # against a ceiling (layer 3, exit index 2): the gate stops there at the latest, whatever the threshold
    ceiling = tmp_path / "ceiling.gate.json"
    assert main(["train-gate", "--model", str(model_path), "--cuts", str(tmp_path / "cuts.jsonl.gz"), "--label",
                 "frames", "--reference-layer", "3", "--output", str(ceiling), "--chunk-frames", str(CHUNK),
                 "--left-context-chunks", str(LEFT), "--threads", "1"]) == 0
    capped = load_gate(ceiling)
    assert capped.label == "frames@3" and capped.info["reference_layer"] == 3
    features = np.random.default_rng(0).normal(size=(64, len(FEATURES)))
    assert bool((capped.probabilities(2, features) > 0.999).all())
    assert max(layer for _, _, layer in capped.calibration[3]) <= 3.0
    assert main(["train-gate", "--model", str(model_path), "--cuts", str(tmp_path / "cuts.jsonl.gz"),
                 "--reference-layer", "5"]) == 2  # not an exit layer
    # the path label decodes with an LM: this model's own (the shipped LM belongs to the shipped model)
    cut_args = ["--cuts", str(tmp_path / "cuts.jsonl.gz"), "--chunk-frames", str(CHUNK), "--left-context-chunks",
                str(LEFT), "--threads", "1"]
    assert main(["train-gate", "--model", str(model_path), "--label", "path", *cut_args]) == 2  # needs --lm
    from asr_ee.decoding.lm import build_ngram
    lm = build_ngram([tokenizer.encode(s) for s in SENTENCES], tokenizer.vocab_size, order=3,
                     blank=tokenizer.blank_id)
    lm.info["tokenizer"] = tokenizer.fingerprint
    lm.save(tmp_path / "lm.pt")
    assert main(["train-gate", "--model", str(model_path), "--lm", str(tmp_path / "lm.pt"), *cut_args]) == 2
    path_gate = tmp_path / "path.gate.json"
    assert main(["train-gate", "--model", str(model_path), "--label", "path", "--lm", str(tmp_path / "lm.pt"),
                 "--path-margin", "0.2", "--output", str(path_gate), *cut_args]) == 0
    assert load_gate(path_gate).label == "path@4" and load_gate(path_gate).info["path_margin"] == 0.2
    # calibrated for streams that hold depth: every threshold costs at least as much, and budgets say so
    held_path = tmp_path / "held.gate.json"
    assert main(["train-gate", "--model", str(model_path), "--cuts", str(tmp_path / "cuts.jsonl.gz"), "--hold-chunks",
                 "2", "--output", str(held_path), "--chunk-frames", str(CHUNK), "--left-context-chunks", str(LEFT),
                 "--threads", "1"]) == 0
    held = load_gate(held_path)
    assert gate.calibrated_hold == 0 and held.calibrated_hold == 2
    pairs = list(zip(gate.calibration[3], held.calibration[3]))
    assert all(h[1] >= g[1] - 1e-9 for g, h in pairs)  # (a recomputing stream's catch-up already charges most of it)
    from asr_ee.streaming.budget import threshold_ladder
    assert threshold_ladder(ExitCriterion("gate", 0.9), held, 3, 0.05, hold=2)[0] == 0.9
    with pytest.raises(ConfigError, match="hold_chunks 2"):
        threshold_ladder(ExitCriterion("gate", 0.9), held, 3, 0.05, hold=0)
    evaluate_args = ["evaluate", str(tmp_path / "cuts.jsonl.gz"), "--model", str(model_path), "--attention", "chunk",
                     "--chunk-frames", str(CHUNK), "--left-context-chunks", str(LEFT), "--criteria", "gate,fixed",
                     "--thresholds", "gate=0.5", "--gate-budget", "1.0", "--no-plot", "--quiet", "--threads", "1"]
    assert main(evaluate_args + ["--output-dir", str(tmp_path / "eval")]) == 0
    summary = json.loads((tmp_path / "eval" / "results.json").read_text())
    thresholds = {r["threshold"] for r in summary["policies"] if r["criterion"] == "gate"}
    assert thresholds == {0.5, gate.threshold_for_budget(1.0)}
    other = _encoder(tokenizer.vocab_size, seed=1)  # a gate trained on another model is refused
    export_model({"encoder_config": to_dict(other.cfg), "model": other.state_dict()}, tokenizer.path, model_path,
                 half=False)
    assert main(evaluate_args + ["--output-dir", str(tmp_path / "eval2")]) == 2
