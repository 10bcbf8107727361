"""Transcript files (asr_ee.inputs.from_transcripts): each bad line is a failed utterance that names
the line; audio no line names is listed, not skipped."""

from __future__ import annotations

from pathlib import Path

from asr_ee.inputs import from_transcripts


def _audio(folder: Path, *names: str) -> None:
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"RIFF")  # never decoded here


def test_bad_lines_and_unnamed_audio_are_listed(tmp_path: Path) -> None:
    _audio(tmp_path / "audio", "a.wav", "b.wav", "c.wav", "d.wav", "orphan.flac")
    text = tmp_path / "text"
    text.write_bytes(b"a hello there\n"
                     b"b caf\xe9 au lait\n"      # Latin-1, not UTF-8
                     b"\n"                         # empty line
                     b"c\n"                        # an id with no text
                     b"d   \n"                     # only spaces after the id
                     b"e no audio for this\n")
    utts = {u.id: u for u in from_transcripts(tmp_path / "audio", text)}
    assert utts["a"].error is None and utts["a"].reference == "hello there"
    assert utts["b"].error == f"{text}:2: not UTF-8 text (byte 0xe9 at column 6)"
    assert utts["line 3"].error == f"{text}:3: empty line"
    assert utts["c"].error == f"{text}:4: 'c' has no transcript text"
    assert utts["d"].error == f"{text}:5: 'd' has no transcript text"
    assert utts["e"].error.startswith(f"{text}:6: no audio file for 'e'")
    orphan = utts["orphan"]
    assert orphan.error == f"{tmp_path / 'audio' / 'orphan.flac'}: audio with no transcript line in {text}"
    assert list(utts) == ["a", "b", "line 3", "c", "d", "e", "orphan"]


def test_tsv_lines(tmp_path: Path) -> None:
    _audio(tmp_path / "audio", "x.wav", "y.wav")
    tsv = tmp_path / "t.tsv"
    tsv.write_text("x.wav\tspeaker\tgood words\ny.wav\tspeaker\t \n")
    utts = {u.id: u for u in from_transcripts(tmp_path / "audio", tsv)}
    assert utts["x"].error is None and utts["x"].reference == "good words"
    assert utts["y"].error == f"{tsv}:2: 'y.wav' has no transcript text"
    assert len(utts) == 2  # y.wav is named by a line: not listed again
