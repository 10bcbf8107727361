"""scripts/unseen_words.py: errors on words heard in training against the words never heard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_reference_words_are_split_by_the_training_transcripts(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str], script) -> None:
    from lhotse import CutSet, MonoCut, SupervisionSegment

    CutSet.from_cuts([MonoCut(id="t", start=0.0, duration=1.0, channel=0, supervisions=[SupervisionSegment(
        id="t", recording_id="t", start=0.0, duration=1.0, text="the cat sat")])]).to_file(tmp_path / "train.jsonl.gz")
    split = tmp_path / "eval" / "natural"
    split.mkdir(parents=True)
    utts = [("the cat sat on a mat", "the hat sat on mat extra"),   # training: the ok, cat wrong, sat ok;
            ("a cat", "a cat")]                                     # other: on ok, a deleted, mat ok, a ok
    split.joinpath("utterances.jsonl").write_text("".join(
        json.dumps({"id": str(i), "reference": r, "hypotheses": {"lm": ["", h]}}) + "\n"
        for i, (r, h) in enumerate(utts)))
    module = script("unseen_words")
    counts = module.word_outcomes(split, module.training_words([tmp_path / "train.jsonl.gz"]), "lm", -1)
    assert counts == {"training": [4, 1], "new": [0, 0], "other": [4, 1]}
    assert module.word_outcomes(split, {"the", "cat", "sat"}, "lm", 0) == {"training": [4, 4], "new": [0, 0],
                                                                         "other": [4, 4]}
    assert module.main([str(split), "--train-cuts", str(tmp_path / "train.jsonl.gz")]) == 0
    assert "| natural | 4 | 25.0% | 4 | 25.0% |" in capsys.readouterr().out
    # a sentence list counts as training; a new source's own words get their own column
    (tmp_path / "more.txt").write_text("on a\n")
    CutSet.from_cuts([MonoCut(id="w", start=0.0, duration=1.0, channel=0, supervisions=[SupervisionSegment(
        id="w", recording_id="w", start=0.0, duration=1.0, text="the mat")])]).to_file(tmp_path / "wide.jsonl.gz")
    assert module.main([str(split), "--train-cuts", str(tmp_path / "train.jsonl.gz"), "--train-text",
                        str(tmp_path / "more.txt"), "--new-cuts", str(tmp_path / "wide.jsonl.gz")]) == 0
    out = capsys.readouterr().out
    assert "5 distinct words in the training transcripts, 1 more only in" in out
    assert "| natural | 7 | 28.6% | 1 | 0.0% | 0 | - |" in out  # on/a/a join training (a deleted once); mat is new
    with pytest.raises(SystemExit):
        module.main([str(split)])
