"""Native English voices (Hibari, SVOX Pico) and the native corpus beside a tiny corpus."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet

from asr_ee.cli import main
from asr_ee.config import ConfigError
from asr_ee.data.native_voices import (HibariRanges, HibariSettings, PicoRanges, PicoSettings, draw_hibari_settings,
                                       draw_pico_settings, synthesize_hibari, synthesize_pico)


def test_settings_are_checked_and_draws_are_seeded() -> None:
    with pytest.raises(ConfigError, match="Pico voice"):
        PicoSettings(voice="de-DE")
    with pytest.raises(ConfigError, match="speed"):
        HibariSettings(speed=3.0)
    with pytest.raises(ConfigError, match="Pico voices"):
        PicoRanges(voices=("en-US", "fr-FR"))
    with pytest.raises(ConfigError, match="Hibari speed range"):
        HibariRanges(speed=(1.2, 0.8))
    draws = [draw_hibari_settings(HibariRanges(), random.Random(i)) for i in range(50)]
    assert draws == [draw_hibari_settings(HibariRanges(), random.Random(i)) for i in range(50)]
    assert all(0.8 <= d.speed <= 1.25 for d in draws) and len({d.seed for d in draws}) == 50
    pico = [draw_pico_settings(PicoRanges(), random.Random(i)) for i in range(50)]
    assert {p.voice for p in pico} == {"en-US", "en-GB"} and len({p.id for p in pico}) > 40


def test_hibari_speaks_speed_is_tempo_and_seed_changes_the_rendition() -> None:
    text = "turn on the lights in the kitchen"
    slow, rate = synthesize_hibari(text, HibariSettings(0.8, 1))
    fast, _ = synthesize_hibari(text, HibariSettings(1.25, 1))
    assert rate == 24000 and slow.dtype == np.float32
    assert 0.05 < np.abs(slow).max() <= 1.5 and 1.0 < len(slow) / rate < 4.0
    assert len(slow) > 1.3 * len(fast)
    again, _ = synthesize_hibari(text, HibariSettings(0.8, 1))
    other, _ = synthesize_hibari(text, HibariSettings(0.8, 2))
    assert np.array_equal(slow, again)  # a setting is one rendition
    n = min(len(slow), len(other))
    assert not np.allclose(slow[:n], other[:n], atol=1e-3)


def test_pico_voices_differ_and_do_not_clip() -> None:
    text = "turn on the lights in the kitchen"
    us, rate = synthesize_pico(text, PicoSettings("en-US"))
    gb, _ = synthesize_pico(text, PicoSettings("en-GB"))
    fast, _ = synthesize_pico(text, PicoSettings("en-US", speed=1.2))
    assert rate == 16000 and us.dtype == np.float32 and 1.0 < len(us) / rate < 4.0
    assert 0.05 < np.abs(us).max() < 0.99  # the default volume clips at full scale; ours does not
    assert len(us) > 1.1 * len(fast)
    n = min(len(us), len(gb))
    assert not np.allclose(us[:n], gb[:n], atol=1e-2)


def test_native_plan_holds_out_the_natural_sentences_and_keeps_wide_text_off_the_base(tiny_corpus: Path,
                                                                                        tmp_path: Path) -> None:
    from asr_ee.data.native_corpus import NativeCorpusConfig, plan_native_corpus
    from asr_ee.data.natural_corpus import unused_sentences

    with pytest.raises(ConfigError, match="hibari_prob"):
        NativeCorpusConfig(hibari_prob=1.5)
    listed = tmp_path / "held.txt"
    cfg = NativeCorpusConfig(base_dir=str(tiny_corpus), top_words=3000, train_utterances=200, heldout_utterances=5,
                             exclude=[str(listed)])
    listed.write_text("")
    plans = plan_native_corpus(cfg, tmp_path)
    held = plans["hibari_heldout"]
    assert [j.text for j in held] == unused_sentences(tiny_corpus, 0)[:5]  # the natural split's sentences
    assert {j.engine for j in held} == {"hibari"} and {j.hibari for j in held} == {HibariSettings()}
    train = plans["train_native"]
    base = {s for f in (tiny_corpus / "text").glob("sentences_*.txt") for s in f.read_text().splitlines()}
    base_train = {s.text for c in CutSet.from_file(tiny_corpus / "cuts_train.jsonl.gz") for s in c.supervisions}
    wide = [j.text for j in train if j.text not in base_train]
    assert not set(wide) & base and len(wide) == len(set(wide))  # wide sentences: new, each once
    assert 70 < len(wide) < 130  # wide_prob 0.5
    assert not {j.text for j in held} & {j.text for j in train}
    engines = [j.engine for j in train]
    assert 120 < engines.count("hibari") < 165 and engines.count("pico") == 200 - engines.count("hibari")
    assert all((j.hibari is None) != (j.pico is None) for j in train)
    assert 140 < sum(j.pseudo is not None for j in train) < 185  # pseudo_prob 0.8
    assert len({j.speaker for j in train}) > 150
    assert plan_native_corpus(cfg, tmp_path)["train_native"] == train  # seeded


@pytest.mark.slow
def test_native_corpus_beside_a_tiny_corpus(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "native"
    args = ["prepare", "native", "--config", "recipes/offline_tts/conf/native.yaml", "--output-dir", str(out),
            "--quiet", f"base_dir={tiny_corpus}", "top_words=3000", "train_utterances=4", "heldout_utterances=2",
            "num_jobs=1"]
    assert main(args) == 0
    held = CutSet.from_file(out / "cuts_hibari_heldout.jsonl.gz")
    assert len(held) == 2 and all(c.supervisions[0].speaker == "hibari-heart_s1.00" for c in held)
    assert all(c.has_features and c.load_features().shape[1] == 80 for c in held)
    listed = (out / "text" / "sentences_hibari_heldout.txt").read_text().splitlines()
    assert sorted(listed) == sorted(c.supervisions[0].text for c in held)
    train = CutSet.from_file(out / "cuts_train_native.jsonl.gz")
    assert len(train) == 4 and {c.supervisions[0].custom["engine"] for c in train} <= {"hibari", "pico"}
    assert all(c.recording.sampling_rate == 16000 and c.duration > 0.5 for c in train)


def test_the_second_draw_is_another_draw_with_no_held_out_split(tiny_corpus: Path, tmp_path: Path) -> None:
    """native_more.yaml (A's seventh stage): more Hibari, no held-out split, other renditions than native.yaml's."""
    from asr_ee.config import apply_overrides, load_yaml
    from asr_ee.data.native_corpus import NativeCorpusConfig, plan_native_corpus

    overrides = [f"base_dir={tiny_corpus}", "top_words=3000", "train_utterances=300"]
    first, second = (apply_overrides(load_yaml(NativeCorpusConfig, f"recipes/offline_tts/conf/{name}.yaml"), overrides)
                     for name in ("native", "native_more"))
    plans = plan_native_corpus(second, tmp_path)
    assert plans["hibari_heldout"] == []
    train = plans["train_native"]
    assert 0.78 < sum(j.engine == "hibari" for j in train) / len(train) < 0.92  # hibari_prob 0.85
    renditions = {(j.text, j.hibari) for j in plan_native_corpus(first, tmp_path)["train_native"]}
    assert not renditions & {(j.text, j.hibari) for j in train if j.hibari is not None}


def test_the_third_draw_has_more_pseudo_speakers_over_wider_ranges(tiny_corpus: Path, tmp_path: Path) -> None:
    """native_third.yaml (A's eighth stage): Hibari in 90%, 90% pseudo-speakers over wider ranges, new renditions."""
    from asr_ee.config import apply_overrides, load_yaml
    from asr_ee.data.native_corpus import NativeCorpusConfig, plan_native_corpus

    overrides = [f"base_dir={tiny_corpus}", "top_words=3000", "train_utterances=400"]
    first, second, third = (apply_overrides(load_yaml(NativeCorpusConfig, f"recipes/offline_tts/conf/{name}.yaml"),
                                            overrides) for name in ("native", "native_more", "native_third"))
    train = plan_native_corpus(third, tmp_path)["train_native"]
    assert 0.84 < sum(j.engine == "hibari" for j in train) / len(train) < 0.96  # hibari_prob 0.9
    speakers = [j.pseudo for j in train if j.pseudo is not None]
    assert 0.84 < len(speakers) / len(train) < 0.96  # pseudo_prob 0.9
    formants = [s.formant for s in speakers]
    assert min(formants) < 0.86 and max(formants) > 1.18  # beyond the first two draws' 0.86-1.18
    for earlier in (first, second):
        renditions = {(j.text, j.hibari) for j in plan_native_corpus(earlier, tmp_path)["train_native"]}
        assert not renditions & {(j.text, j.hibari) for j in train if j.hibari is not None}
