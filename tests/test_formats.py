"""Transcript output formats: text, JSON with word timings and confidences, SRT and WebVTT."""

from __future__ import annotations

import json

import pytest

from asr_ee.api import Transcript
from asr_ee.formats import MAX_CUE_S, format_transcript, subtitle_cues
from asr_ee.streaming.stream import Segment, Word


def _transcript() -> Transcript:
    first = [Word("turn", 0.52, 0.8, 0.91), Word("on", 0.84, 0.96, 0.8), Word("the", 1.0, 1.1, 0.99),
             Word("lights", 1.12, 1.6, 0.5)]
    second = [Word(f"w{i}", 3.0 + i, 3.0 + i + 0.5, 0.9) for i in range(8)]  # 8 s of words: two cues
    segments = [Segment("turn on the lights", [1, 2], 0.0, 1.6, first),
                Segment(" ".join(w.text for w in second), [3], 2.5, 10.5, second)]
    return Transcript(" ".join(s.text for s in segments), segments, first + second, [], 11.0)


def test_text_is_the_id_and_the_text_or_the_text_alone() -> None:
    transcript = _transcript()
    assert format_transcript(transcript, "text", utt_id="a") == f"a\t{transcript.text}\n"
    assert format_transcript(transcript, "text") == f"{transcript.text}\n"


def test_json_carries_segments_and_words_with_times_and_confidences() -> None:
    record = json.loads(format_transcript(_transcript(), "json", utt_id="a", extra={"source": "a.wav"}))
    assert list(record)[:3] == ["id", "source", "text"]
    assert record["words"][3] == {"text": "lights", "start_s": 1.12, "end_s": 1.6, "confidence": 0.5}
    assert record["segments"][0]["words"] == record["words"][:4]
    assert [s["start_s"] for s in record["segments"]] == [0.0, 2.5] and "chunks" not in record


def test_subtitle_cues_follow_the_words_and_stay_short() -> None:
    cues = subtitle_cues(_transcript())
    assert cues[0] == (0.52, 1.6, "turn on the lights")  # from the first word, not the segment's start
    assert all(end - start <= MAX_CUE_S for start, end, _ in cues)
    assert " ".join(text for _, _, text in cues[1:]) == " ".join(f"w{i}" for i in range(8))
    assert len(cues) == 3


def test_srt_and_vtt() -> None:
    srt = format_transcript(_transcript(), "srt")
    assert srt.startswith("1\n00:00:00,520 --> 00:00:01,600\nturn on the lights\n\n2\n00:00:03,000 --> ")
    vtt = format_transcript(_transcript(), "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.520 --> 00:00:01.600\nturn on the lights\n\n")
    assert srt.count(" --> ") == vtt.count(" --> ") == 3


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        format_transcript(_transcript(), "docx")
