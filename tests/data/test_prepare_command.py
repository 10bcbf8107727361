"""``asr-ee prepare``: argument handling and what it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr_ee.cli import main

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "recipes" / "offline_tts" / "conf" / "tiny.yaml")


def test_prints_the_corpus_it_built(tiny_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", "offline", "--config", TINY, "--output-dir", str(tiny_corpus),
                 "--quiet"]) == 0  # already built: every stage is skipped
    out = capsys.readouterr().out
    assert f"corpus ready in {tiny_corpus}" in out
    assert "cuts_train.jsonl.gz: 120 cuts" in out and "cuts_noise.jsonl.gz" in out


@pytest.mark.parametrize("override,message", [
    ("top_wordz=10", "unknown key 'top_wordz'"),
    ("train_utterances=many", "expected an integer"),
    ("engines=[espeak, mbrola]", "engines"),
    ("prepare.speed_factors=[1.0]", "speed_factors"),
])
def test_bad_overrides_are_errors(override: str, message: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", "offline", "--config", TINY, "--output-dir", str(tmp_path / "out"),
                 override]) == 2
    assert message in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("corpus,conf", [("librispeech", "librispeech/conf/clean100.yaml"),
                                         ("tedlium", "tedlium/conf/tedlium3.yaml")])
def test_corpus_recipes_need_a_corpus_dir(corpus: str, conf: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", corpus, "--config", str(REPO / "recipes" / conf), "--output-dir",
                 str(tmp_path / "out")]) == 2
    assert "corpus_dir is not set" in capsys.readouterr().out


def test_missing_corpus_is_reported_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-corpus"
    assert main(["prepare", "librispeech", "--config", str(REPO / "recipes/librispeech/conf/clean100.yaml"),
                 "--output-dir", str(tmp_path / "out"), f"corpus_dir={missing}"]) == 1
    assert f"error: {missing}: corpus directory does not exist" in capsys.readouterr().out
