"""TTS engine wrappers: every engine renders 16 kHz mono audio; missing engines name packages."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from asr_ee.data.errors import MissingPackageError
from asr_ee.data.tts import SynthesisJob, Voice, check_engine, synthesize, synthesize_batch

TEXT = "the quick brown fox jumps over the lazy dog"


def test_voice_id_is_stable() -> None:
    voice = Voice.make("espeak", "en-us+f3", speed=160.0, pitch=40, gap=1)
    assert voice.id == "espeak-en-us+f3_gap1_pitch40_speed160"
    assert voice == Voice.make("espeak", "en-us+f3", gap=1, pitch=40.0, speed=160)
    assert Voice.make("flite", "slt", stretch=1.123456).id == "flite-slt_stretch1.12"
    with pytest.raises(ValueError, match="unknown TTS engine"):
        Voice.make("mbrola", "us1")


@pytest.mark.parametrize("voice", [
    Voice.make("espeak", "en-gb-scotland+m3", speed=150, pitch=30, gap=1),   # 22.05 kHz
    Voice.make("flite", "kal16", stretch=1.1, f0=110),
    Voice.make("festival", "cmu_us_slt_arctic_hts", stretch=0.9, semitones=2),  # 32 kHz
    Voice.make("festival", "kal_diphone", stretch=1.0, f0=120),
], ids=lambda v: v.id)
def test_engines_render_16k_mono(voice: Voice, tmp_path: Path) -> None:
    jobs = [SynthesisJob(f"u{i}", TEXT, voice, str(tmp_path / f"u{i}.flac")) for i in range(2)]
    results = synthesize_batch(jobs)
    for job, result in zip(jobs, results):
        assert result.error is None
        audio, rate = sf.read(job.path)
        assert rate == 16000 and audio.ndim == 1 and len(audio) == result.num_samples
        assert 1.5 < len(audio) / rate < 6.0 and 0.25 < abs(audio).max() <= 0.96


def test_speed_parameter_changes_duration(tmp_path: Path) -> None:
    slow = Voice.make("flite", "slt", stretch=1.3)
    fast = Voice.make("flite", "slt", stretch=0.8)
    jobs = [SynthesisJob(v.id, TEXT, v, str(tmp_path / f"{v.id}.flac")) for v in (slow, fast)]
    results = synthesize(jobs, num_jobs=2)
    assert [r.utterance_id for r in results] == [slow.id, fast.id]
    assert results[0].num_samples > 1.4 * results[1].num_samples


@pytest.mark.parametrize("engine,package", [("espeak", "espeak-ng"), ("flite", "flite"),
                                            ("festival", "festival")])
def test_missing_engine_names_apt_package(engine: str, package: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingPackageError, match=f"apt-get install .*{package}\\)$"):
        check_engine(engine)
    job = SynthesisJob("u", TEXT, Voice.make(engine, "x"), str(tmp_path / "u.flac"))
    with pytest.raises(MissingPackageError, match=package):
        synthesize([job], num_jobs=1)


def test_missing_festival_voice_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "glob", lambda self, pattern: iter(()))
    with pytest.raises(MissingPackageError, match="festvox-kdlpc16k"):
        check_engine("festival", "ked_diphone")
