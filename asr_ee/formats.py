"""Transcript output formats: plain text, JSON (segments and words with times and confidences),
SubRip (``.srt``) and WebVTT (``.vtt``) subtitles.

Subtitle cues follow the words: a cue closes at a segment's end, or before a word that would make
it longer than ``MAX_CUE_S`` seconds or ``MAX_CUE_CHARS`` characters.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asr_ee.api import Transcript
    from asr_ee.streaming.stream import Word

__all__ = ["FORMATS", "EXTENSIONS", "format_transcript", "subtitle_cues", "MAX_CUE_S", "MAX_CUE_CHARS"]

FORMATS = ("text", "json", "srt", "vtt")
EXTENSIONS = {"text": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt"}
MAX_CUE_S = 6.0
MAX_CUE_CHARS = 84


def subtitle_cues(transcript: "Transcript") -> list[tuple[float, float, str]]:
    """(start_s, end_s, text) cues from the segments' words (a segment without words: one cue)."""
    cues: list[tuple[float, float, str]] = []
    for segment in transcript.segments:
        if not segment.words:
            if segment.text:
                cues.append((segment.start_s, segment.end_s, segment.text))
            continue
        current: list[Word] = []
        for word in segment.words:
            text = " ".join(w.text for w in current + [word])
            if current and (word.end_s - current[0].start_s > MAX_CUE_S or len(text) > MAX_CUE_CHARS):
                cues.append(_cue(current))
                current = []
            current.append(word)
        cues.append(_cue(current))
    return cues


def _cue(words: list["Word"]) -> tuple[float, float, str]:
    return words[0].start_s, words[-1].end_s, " ".join(w.text for w in words)


def _timestamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def format_transcript(transcript: "Transcript", fmt: str, *, utt_id: str | None = None,
                      extra: dict[str, Any] | None = None, chunk_fields: tuple[str, ...] = ()) -> str:
    """The transcript as ``fmt`` (one of :data:`FORMATS`), ending in a newline.

    ``text``: ``id<TAB>text`` with an id, else the text. ``json``: one line, ``id`` and ``extra``
    first, then :meth:`Transcript.to_dict`."""
    if fmt == "text":
        return f"{utt_id}\t{transcript.text}\n" if utt_id is not None else f"{transcript.text}\n"
    if fmt == "json":
        record: dict[str, Any] = {} if utt_id is None else {"id": utt_id}
        record.update(extra or {})
        record.update(transcript.to_dict(chunk_fields))
        return json.dumps(record, ensure_ascii=False) + "\n"
    cues = subtitle_cues(transcript)
    if fmt == "srt":
        return "".join(f"{i}\n{_timestamp(a, ',')} --> {_timestamp(b, ',')}\n{text}\n\n"
                       for i, (a, b, text) in enumerate(cues, 1))
    if fmt == "vtt":
        return "WEBVTT\n\n" + "".join(f"{_timestamp(a, '.')} --> {_timestamp(b, '.')}\n{text}\n\n"
                                       for a, b, text in cues)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
