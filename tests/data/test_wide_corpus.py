"""The wide-text extension: the base corpus's engines on sentences it never had."""

from __future__ import annotations

from pathlib import Path

import pytest
from lhotse import CutSet

from asr_ee.cli import main
from asr_ee.config import ConfigError
from asr_ee.data.errors import CorpusFileError


def _base_sentences(corpus: Path) -> set[str]:
    return {s for f in (corpus / "text").glob("sentences_*.txt") for s in f.read_text().splitlines()}


def test_wide_pool_keeps_off_the_base_corpus_and_every_excluded_sentence(tiny_corpus: Path, tmp_path: Path) -> None:
    from asr_ee.data.text_sources import load_sentences
    from asr_ee.data.wide_corpus import WideCorpusConfig, base_config, wide_pool

    base_cfg = base_config(tiny_corpus)
    assert base_cfg.top_words == 1000 and base_cfg.engines == ["espeak", "flite"]
    cfg = WideCorpusConfig(base_dir=str(tiny_corpus), top_words=3000, train_utterances=10)
    pool = wide_pool(cfg, base_cfg)
    base = _base_sentences(tiny_corpus)
    assert len(pool) > 100 and len(set(pool)) == len(pool) and not set(pool) & base
    vocabulary = set(load_sentences(3000, min_words=4, max_words=12).vocabulary)
    assert all(w in vocabulary for s in pool for w in s.split())
    assert wide_pool(cfg, base_cfg) == pool  # seeded
    assert wide_pool(WideCorpusConfig(base_dir=str(tiny_corpus), top_words=3000, seed=4), base_cfg) != pool
    # a listed test sentence takes out every sentence that shares a 6-word run with it
    victim = next(s for s in pool if len(s.split()) >= 8)
    listed = tmp_path / "held.txt"
    listed.write_text("zzz " + " ".join(victim.split()[1:7]) + " zzz\n")
    excluded = wide_pool(WideCorpusConfig(base_dir=str(tiny_corpus), top_words=3000, exclude=[str(listed)]), base_cfg)
    assert victim in pool and victim not in excluded and set(excluded) < set(pool)
    with pytest.raises(CorpusFileError, match="excluded sentence list"):
        wide_pool(WideCorpusConfig(base_dir=str(tiny_corpus), exclude=[str(tmp_path / "none.txt")]), base_cfg)
    with pytest.raises(CorpusFileError, match="build the base corpus first"):
        base_config(tmp_path)
    with pytest.raises(ConfigError, match="pseudo_prob"):
        WideCorpusConfig(pseudo_prob=1.5)


@pytest.mark.slow
def test_wide_corpus_beside_a_tiny_corpus(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "wide"
    args = ["prepare", "wide", "--config", "recipes/offline_tts/conf/wide.yaml", "--output-dir", str(out),
            "--quiet", f"base_dir={tiny_corpus}", "top_words=3000", "train_utterances=6", "exclude=[]",
            "pseudo_prob=0.5", "num_jobs=1"]
    assert main(args) == 0
    cuts = CutSet.from_file(out / "cuts_train_wide.jsonl.gz")
    assert len(cuts) == 6
    texts = [c.supervisions[0].text for c in cuts]
    assert len(set(texts)) == 6 and not set(texts) & _base_sentences(tiny_corpus)
    assert sorted((out / "text" / "sentences_train_wide.txt").read_text().splitlines()) == sorted(texts)
    speakers = [c.supervisions[0].speaker for c in cuts]
    assert {c.supervisions[0].custom["engine"] for c in cuts} <= {"espeak", "flite"}
    assert not any("awb" in s or "gbcwmd" in s for s in speakers)  # the base's held-out voices stay out
    assert all(c.has_features and c.load_features().shape[1] == 80 for c in cuts)
    assert not (out / "audio" / "raw").exists()  # rendered into audio/train_wide
    assert main(args) == 0  # finished: a rerun does nothing and keeps the split
    assert len(CutSet.from_file(out / "cuts_train_wide.jsonl.gz")) == 6
