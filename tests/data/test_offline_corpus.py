"""The tiny offline TTS recipe, end to end, and its voice/sentence planning."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from lhotse import (CutSet, RecordingSet, SupervisionSet, validate,
                    validate_recordings_and_supervisions)

from asr_ee.data.offline_corpus import SPLITS, plan_utterances, sample_voices
from asr_ee.data.prepare import manifest_path
from asr_ee.data.tokenizer import Tokenizer
from asr_ee.features import NUM_MEL_BINS, num_frames
from asr_ee.text import normalize_text


def _cuts(corpus: Path, split: str) -> CutSet:
    return CutSet.from_file(corpus / f"cuts_{split}.jsonl.gz").to_eager()


def _speakers(cuts: CutSet) -> set[str]:
    return {s.speaker for c in cuts for s in c.supervisions}


def test_layout_and_manifests_validate(tiny_corpus: Path, offline_config) -> None:
    cfg = offline_config()
    for split in SPLITS + ("noise",):
        cuts = _cuts(tiny_corpus, split)
        validate(cuts, read_data=True)
        assert all(c.has_features for c in cuts)
    assert len(_cuts(tiny_corpus, "train")) == 3 * cfg.train_utterances  # + 0.9 and 1.1 copies
    assert len(_cuts(tiny_corpus, "dev")) == cfg.dev_utterances
    assert (tiny_corpus / "tokenizer" / "bpe.model").is_file()
    assert not list(tiny_corpus.rglob(".tmp_*"))
    for split in SPLITS:
        validate_recordings_and_supervisions(
            RecordingSet.from_file(manifest_path(tiny_corpus, "recordings", split)),
            SupervisionSet.from_file(manifest_path(tiny_corpus, "supervisions", split)), read_data=True)


def test_features_match_audio(tiny_corpus: Path) -> None:
    cuts = _cuts(tiny_corpus, "train")
    sp = [c for c in cuts if c.id.endswith("_sp0.9")][:2]
    for cut in list(cuts)[:3] + sp + list(_cuts(tiny_corpus, "noise"))[:1]:
        feats = cut.load_features()
        audio = cut.load_audio()
        assert feats.shape == (num_frames(audio.shape[1]), NUM_MEL_BINS)
        assert abs(feats.shape[0] - cut.duration * 100) <= 3
        assert np.isfinite(feats).all() and feats.std() > 0.1
    # a 0.9x speed copy is ~1/0.9 times longer than its original
    original = cuts[sp[0].id.removesuffix("_sp0.9")]
    assert sp[0].duration == pytest.approx(original.duration / 0.9, rel=0.01)


def test_transcripts_normalized_and_tokenizer_round_trips(tiny_corpus: Path) -> None:
    tokenizer = Tokenizer(tiny_corpus / "tokenizer" / "bpe.model")
    assert tokenizer.blank_id == 0 and tokenizer.vocab_size <= 64
    for split in SPLITS:
        for cut in _cuts(tiny_corpus, split):
            text = cut.supervisions[0].text
            assert text == normalize_text(text) and text
            ids = tokenizer.encode(text)
            assert ids and 0 not in ids
            if split == "train":
                assert tokenizer.decode(ids) == text


def test_splits_disjoint_and_heldout_voices_unseen(tiny_corpus: Path) -> None:
    texts = {s: {c.supervisions[0].text for c in _cuts(tiny_corpus, s)} for s in SPLITS}
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not texts[a] & texts[b], (a, b)
    train, heldout = _cuts(tiny_corpus, "train"), _cuts(tiny_corpus, "test_heldout_voices")
    assert not _speakers(train) & _speakers(heldout)
    assert _speakers(_cuts(tiny_corpus, "dev")) <= _speakers(train)
    train_bases = {s.custom["base_voice"] for c in train for s in c.supervisions}
    train_engines = {s.custom["engine"] for c in train for s in c.supervisions}
    assert train_engines == {"espeak", "flite"}
    assert not any(b.startswith("en-gb-x-gbcwmd") for b in train_bases)  # held-out accent
    assert "awb" not in train_bases


def test_corpus_json_summary(tiny_corpus: Path) -> None:
    summary = json.loads((tiny_corpus / "corpus.json").read_text())
    train = summary["splits"]["train"]
    hours = sum(c.duration for c in _cuts(tiny_corpus, "train")) / 3600
    assert train["hours"] == pytest.approx(hours, abs=1e-3)
    assert train["utterances_before_speed_perturbation"] == 40
    assert summary["train_splits"] == ["train"]
    assert summary["build_wall_seconds"] > 0 and summary["disk_bytes"] > 100_000
    assert summary["text"]["kept"] > 1000 and summary["text"]["skipped"]["digits_or_symbols"] > 0


def test_voice_sampling_is_deterministic_and_varied(offline_config) -> None:
    cfg = offline_config("train_voices={espeak: 50, flite: 8}")
    a = sample_voices(cfg, heldout=False, rng=random.Random(1))
    b = sample_voices(cfg, heldout=False, rng=random.Random(1))
    c = sample_voices(cfg, heldout=False, rng=random.Random(2))
    assert a == b and a != c
    assert len(a["espeak"]) == 50 and len({v.voice.split("+")[0] for v in a["espeak"]}) >= 5
    assert {v.voice for v in a["flite"]} == {"kal16", "rms", "slt"}  # every non-held-out voice
    jobs = plan_utterances("train", ["a b c d", "e f g h"], 5, a, cfg, random.Random(0), Path("x"))
    assert [j.utterance_id for j in jobs] == [f"train-{i:06d}" for i in range(5)]
    assert {j.text for j in jobs} == {"a b c d", "e f g h"}
