"""Praat pseudo-speakers, the Piper voice and the natural-voice corpus built beside a tiny corpus."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet

from asr_ee.cli import main
from asr_ee.config import ConfigError
from asr_ee.data.voices import (PiperSettings, PseudoSpeakerRanges, draw_pseudo_speaker,
                                synthesize_piper)


def _vowel(seconds: float = 1.0, f0: float = 120.0, rate: int = 16000) -> np.ndarray:
    """A crude voiced sound: a glottal pulse train through two formant-like resonances."""
    t = np.arange(int(seconds * rate)) / rate
    source = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 30))
    return (0.3 * source / np.abs(source).max()).astype(np.float32)


def _pitch(audio: np.ndarray, rate: int = 16000) -> float:
    import parselmouth

    pitch = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=rate).to_pitch()
    values = pitch.selected_array["frequency"]
    return float(np.median(values[values > 0]))


def test_pseudo_speakers_draws_are_seeded_correlated_and_in_range() -> None:
    ranges = PseudoSpeakerRanges()
    a = [draw_pseudo_speaker(ranges, random.Random(3)) for _ in range(2)]
    assert a[0] == a[1]  # same seed, same speaker
    speakers = [draw_pseudo_speaker(ranges, random.Random(i)) for i in range(200)]
    assert len({s.id for s in speakers}) == 200
    formants = np.array([s.formant for s in speakers])
    pitches = np.array([s.pitch_median for s in speakers])
    assert formants.min() >= ranges.formant[0] and formants.max() <= ranges.formant[1]
    assert np.corrcoef(formants, pitches)[0, 1] > 0.8  # larger vocal tracts speak lower
    with pytest.raises(ConfigError, match="formant"):
        PseudoSpeakerRanges(formant=(1.2, 0.9))


def test_pseudo_speaker_moves_pitch_to_its_median_and_changes_duration() -> None:
    audio = _vowel(1.0, f0=120.0)
    speaker = draw_pseudo_speaker(PseudoSpeakerRanges(), random.Random(0))
    speaker = type(speaker)(formant=1.1, pitch_median=200.0, pitch_range=1.0, duration=1.2)
    out = speaker.apply(audio, 16000)
    assert abs(_pitch(audio) - 120.0) < 5
    assert abs(_pitch(out) - 200.0) < 10
    assert abs(len(out) / len(audio) - 1.2) < 0.03


def test_piper_voice_speaks_and_its_settings_change_the_audio() -> None:
    slow, rate = synthesize_piper("turn on the lights", PiperSettings(length_scale=1.3))
    fast, _ = synthesize_piper("turn on the lights", PiperSettings(length_scale=0.8))
    assert rate == 22050 and slow.dtype == np.float32
    assert 0.05 < np.abs(slow).max() <= 1.0
    assert len(slow) > 1.25 * len(fast)  # length_scale is a tempo knob (1.3 / 0.8; Piper's pauses are fixed)


@pytest.mark.slow
def test_natural_corpus_beside_a_tiny_corpus(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "natural"
    args = ["prepare", "natural", "--config", "recipes/offline_tts/conf/natural.yaml",
            "--output-dir", str(out), "--quiet", f"base_dir={tiny_corpus}", "natural_utterances=3",
            "pseudo_copies=1", "piper_train_utterances=4", "num_jobs=1"]
    assert main(args) == 0
    base_train = CutSet.from_file(tiny_corpus / "cuts_train.jsonl.gz")
    base_texts = {s.text for c in base_train for s in c.supervisions}
    evaluation = {line for split in ("dev", "test", "test_heldout_voices")
                  for line in (tiny_corpus / "text" / f"sentences_{split}.txt").read_text().splitlines()}
    natural = CutSet.from_file(out / "cuts_natural.jsonl.gz")
    assert len(natural) == 3
    for cut in natural:
        sup = cut.supervisions[0]
        assert sup.speaker == "piper-joe" and sup.custom["engine"] == "piper"
        assert sup.text not in base_texts and sup.text not in evaluation  # unseen sentences
        assert cut.has_features and cut.load_features().shape[1] == 80
    listed = (out / "text" / "sentences_natural.txt").read_text().splitlines()
    assert sorted(listed) == sorted(c.supervisions[0].text for c in natural)
    pseudo = CutSet.from_file(out / "cuts_train_pseudo.jsonl.gz")
    originals = [c for c in base_train if "_sp" not in c.id]
    assert len(pseudo) == len(originals)
    assert all("+f" in c.supervisions[0].speaker for c in pseudo)  # base voice + pseudo-speaker id
    piper = CutSet.from_file(out / "cuts_train_piper.jsonl.gz")
    assert len(piper) == 4 and {c.supervisions[0].text for c in piper} <= base_texts
    summary = json.loads((out / "corpus.json").read_text())
    assert summary["splits"]["train_pseudo"]["speakers"] == len({c.supervisions[0].speaker for c in pseudo})
    assert main(args) == 0  # a rerun skips finished stages and changes nothing
    assert len(CutSet.from_file(out / "cuts_natural.jsonl.gz")) == 3


def test_natural_corpus_needs_a_built_base(tmp_path: Path, capsys) -> None:
    rc = main(["prepare", "natural", "--config", "recipes/offline_tts/conf/natural.yaml",
               "--output-dir", str(tmp_path / "n"), f"base_dir={tmp_path / 'missing'}"])
    assert rc != 0
    assert "asr-ee prepare offline" in capsys.readouterr().out


def test_render_watchdog_records_a_hung_job_as_failed_and_keeps_the_rest(tmp_path: Path) -> None:
    """A job that never returns (here: reading a FIFO nobody writes) must not stall a build."""
    import os

    import soundfile as sf

    from asr_ee.data.natural_corpus import RenderJob, _render_all

    good = tmp_path / "good.flac"
    sf.write(str(good), _vowel(0.5), 16000)
    fifo = tmp_path / "hangs.flac"
    os.mkfifo(fifo)
    jobs = [RenderJob(f"u{i}", "a b", "s", "flite", "v", str(tmp_path / "out" / f"u{i}.flac"),
                      source=str(fifo if i == 1 else good)) for i in range(4)]
    results = _render_all(jobs, num_jobs=2, desc="test", timeout_s=4.0)
    assert [r[0] for r in results] == ["u0", "u1", "u2", "u3"]
    assert results[1][1] == 0 and "timed out" in results[1][2]
    for i in (0, 2, 3):
        assert results[i][2] is None and results[i][1] == 8000
        assert (tmp_path / "out" / f"u{i}.flac").is_file()
