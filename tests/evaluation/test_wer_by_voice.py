"""wer_by (asr_ee.evaluation.by_voice, printed by scripts/wer_by_voice.py) groups an evaluation's errors
by TTS engine and base voice."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from asr_ee.evaluation.by_voice import wer_by


def test_errors_are_grouped_by_engine_and_voice(tmp_path: Path) -> None:
    from lhotse import CutSet, MonoCut, SupervisionSegment

    voices = [("a", "flite", "awb"), ("b", "flite", "slt"), ("c", "espeak", "en+m1")]
    CutSet.from_cuts(
        MonoCut(id=i, start=0.0, duration=1.0, channel=0, supervisions=[SupervisionSegment(
            id=i, recording_id=i, start=0.0, duration=1.0, text="x", custom={"engine": e, "base_voice": v})])
        for i, e, v in voices).to_file(tmp_path / "cuts.jsonl.gz")
    utts = [("a", "one two three four", "one two three four"),   # 0 errors / 4
            ("b", "five six", "five seven six"),                   # 1 insertion / 2
            ("c", "eight nine", "nine")]                           # 1 deletion / 2
    (tmp_path / "utterances.jsonl").write_text("".join(
        json.dumps({"id": i, "reference": r, "hypotheses": {"greedy": ["", h]}}) + "\n" for i, r, h in utts))
    by_engine = wer_by(tmp_path, tmp_path / "cuts.jsonl.gz")
    assert by_engine == {"espeak": (2, 50.0), "flite": (6, 100.0 / 6)}
    by_voice = wer_by(tmp_path, tmp_path / "cuts.jsonl.gz", by="voice")
    assert by_voice["flite awb"] == (4, 0.0) and by_voice["flite slt"] == (2, 50.0)
    first_exit = wer_by(tmp_path, tmp_path / "cuts.jsonl.gz", exit_index=0)  # empty hypotheses: all deleted
    assert first_exit["flite"] == (6, 100.0)
    data = (tmp_path / "utterances.jsonl").read_bytes()  # gzipped, as the shipped model's evaluations are
    (tmp_path / "utterances.jsonl").unlink()
    with gzip.open(tmp_path / "utterances.jsonl.gz", "wb") as f:
        f.write(data)
    assert wer_by(tmp_path, tmp_path / "cuts.jsonl.gz") == by_engine
