"""Rerunnable stages: markers, interrupted stages, skipped reruns, atomic files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lhotse import CutSet

import asr_ee.data.offline_corpus as offline_corpus
import asr_ee.data.prepare as prepare
from asr_ee.config import ConfigError, apply_overrides
from asr_ee.data.errors import MissingPackageError
from asr_ee.data.prepare import Stages, atomic_path, cuts_path, manifest_path


class Crash(RuntimeError):
    pass


def test_atomic_path_leaves_nothing_when_interrupted(tmp_path: Path) -> None:
    final = tmp_path / "cuts_train.jsonl.gz"
    with pytest.raises(Crash):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise Crash()
    assert not final.exists() and list(tmp_path.iterdir()) == []
    with atomic_path(final) as tmp:
        tmp.write_text("whole")
    assert final.read_text() == "whole" and list(tmp_path.iterdir()) == [final]


def test_stage_markers(tmp_path: Path) -> None:
    stages = Stages(tmp_path)
    calls: list[str] = []

    def failing() -> None:
        calls.append("failing")
        raise Crash()

    with pytest.raises(Crash):
        stages.run("a", failing)
    assert not stages.done("a")
    assert stages.run("a", lambda: calls.append("a")) is True
    assert stages.run("a", lambda: calls.append("again")) is False
    assert calls == ["failing", "a"] and stages.done("a") and stages.total_seconds() >= 0


def test_interrupted_synthesis_is_redone_cleanly(tmp_path: Path, mini_config,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = offline_corpus.synthesize

    def crash_midway(jobs, **kwargs):
        real(jobs[:3], **kwargs)  # some audio files are already written
        raise Crash("killed during synthesis")

    monkeypatch.setattr(offline_corpus, "synthesize", crash_midway)
    with pytest.raises(Crash):
        offline_corpus.prepare_offline_corpus(mini_config, tmp_path)
    assert (tmp_path / ".done_text").is_file()
    assert not (tmp_path / ".done_synth_train").exists()
    assert not manifest_path(tmp_path, "recordings", "train").exists()
    assert not cuts_path(tmp_path, "train").exists() and not (tmp_path / "corpus.json").exists()

    monkeypatch.setattr(offline_corpus, "synthesize", real)
    offline_corpus.prepare_offline_corpus(mini_config, tmp_path)
    assert len(list((tmp_path / "audio" / "train").glob("*.flac"))) == mini_config.train_utterances
    assert len(CutSet.from_file(cuts_path(tmp_path, "train"))) == 3 * mini_config.train_utterances


def test_interrupted_features_then_reruns_skip_finished_stages(
        tmp_path: Path, mini_config, monkeypatch: pytest.MonkeyPatch) -> None:
    real = prepare.compute_features
    extracted: list[str] = []
    crash_at = ["dev"]

    def crash_on_dev(cuts, storage_dir, **kwargs):
        if Path(storage_dir).name in crash_at:
            raise Crash("killed during dev features")
        extracted.append(Path(storage_dir).name)
        return real(cuts, storage_dir, **kwargs)

    monkeypatch.setattr(prepare, "compute_features", crash_on_dev)
    with pytest.raises(Crash):
        offline_corpus.prepare_offline_corpus(mini_config, tmp_path)
    assert extracted == ["train"] and (tmp_path / ".done_features_train").is_file()
    assert not (tmp_path / ".done_features_dev").exists() and not cuts_path(tmp_path, "dev").exists()

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished stage was run again")

    monkeypatch.setattr(offline_corpus, "synthesize", must_not_run)
    extracted.clear()
    crash_at.clear()
    offline_corpus.prepare_offline_corpus(mini_config, tmp_path)  # resumes at features_dev
    assert extracted == ["dev", "test", "test_heldout_voices", "noise"]

    monkeypatch.setattr(prepare, "compute_features", must_not_run)
    monkeypatch.setattr(prepare, "train_tokenizer", must_not_run)
    before = os.stat(cuts_path(tmp_path, "train")).st_mtime_ns
    cuts = offline_corpus.prepare_offline_corpus(mini_config, tmp_path)  # everything done
    assert os.stat(cuts_path(tmp_path, "train")).st_mtime_ns == before
    assert set(cuts) == {"train", "dev", "test", "test_heldout_voices", "noise"}

    with pytest.raises(ConfigError, match="different config"):
        offline_corpus.prepare_offline_corpus(apply_overrides(mini_config, ["seed=7"]), tmp_path)


def test_missing_engine_names_the_package(tmp_path: Path, mini_config,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(MissingPackageError, match="espeak-ng"):
        offline_corpus.prepare_offline_corpus(mini_config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
