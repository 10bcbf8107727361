"""What the microphone app prints for a given sequence of chunk records, partials and segments."""

from __future__ import annotations

import io

import pytest

from asr_ee.micapp.display import (ChunkTally, LiveDisplay, PlainDisplay, exit_bar, format_status_line,
                                 format_summary, make_display)
from asr_ee.streaming import ChunkRecord, Segment


def record(exit_layer: int, cap: int, cpu: float, end_ms: float, fraction: float = 1.0, frames: int = 8,
           compute_ms: float = 3.2) -> ChunkRecord:
    return ChunkRecord(exit_layer=exit_layer, criterion_value=0.05, cap=cap, compute_ms=compute_ms, backlog_ms=0.0,
                       cpu_load=cpu, frames=frames, compute_fraction=fraction, audio_end_ms=end_ms,
                       decoded_at_ms=end_ms)


class Terminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


CHUNKS = [(record(2, 4, 0.12, 320, 0.5), "it"), (record(4, 4, 0.5, 640, 1.0), "it"),
          (record(2, 2, 0.97, 960, 0.5), "it has")]


def test_plain_display_prints_one_line_per_chunk_segment_transcript_and_summary():
    out, err = io.StringIO(), io.StringIO()
    display, tally = PlainDisplay(4, out, err), ChunkTally()
    for rec, partial in CHUNKS:
        tally.add(rec)
        display.chunk(rec, partial, overflows=0)
    display.segment(Segment("it has", [1, 2], 0.0, 0.96))
    display.chunk(record(2, 2, 0.97, 1280, 0.5), "", overflows=1)
    display.chunk(record(2, 3, 0.40, 1600, 0.5), "fine", overflows=1)
    display.notice("asr-ee mic: input overflow")
    display.finish("it has fine", tally.summary(0.96, 4, overflows=1))
    assert out.getvalue().splitlines() == [
        "[   0.32s] exit 2/4  cap 4  cpu  12%  ~ it",
        "[   0.64s] exit 4/4  cap 4  cpu  50%",
        "[   0.96s] exit 2/4  cap 2  cpu  97%  ~ it has",
        "segment 1 [0.00-0.96s]: it has",
        "[   1.28s] exit 2/4  cap 2  cpu  97%",
        "[   1.60s] exit 2/4  cap 3  cpu  40%  ~ fine",
        "transcript: it has fine",
        "summary: audio 0.96 s | 3 chunks | average exit layer 2.67 of 4 | compute saved 33% "
        "| real-time factor 0.010 | overflows 1",
    ]
    assert err.getvalue() == "asr-ee mic: input overflow\n"


def test_summary_weights_by_frames_and_omits_what_is_unknown():
    tally = ChunkTally()
    tally.add(record(4, 4, 0.0, 320, fraction=1.0, frames=8, compute_ms=10.0))
    tally.add(record(2, 4, 0.0, 400, fraction=0.5, frames=2, compute_ms=10.0))
    summary = tally.summary(0.4, 4)
    assert (summary.mean_exit_layer, summary.compute_saved, summary.rtf) == pytest.approx((3.6, 0.1, 0.05))
    empty = ChunkTally().summary(0.0, 4, overflows=3)
    assert format_summary(empty) == "summary: audio 0.00 s | 0 chunks | overflows 3"


def test_exit_bar_and_status_line_fit_the_terminal_and_keep_the_newest_text():
    assert exit_bar([1, 2, 3, 4], 4) == "▂▄▆█"
    assert exit_bar([2, 4, 12], 12, unicode=False) == "24+"
    line = format_status_line([2, 4, 2], record(2, 4, 0.5, 960), 4, 0, "it has its dark side", width=40)
    assert line == "▄█▄ exit 2/4 cap 4 cpu  50% | …dark side"
    assert len(line) == 40
    assert format_status_line([], None, 4, 2, "", width=80) == "listening overflows 2 | "
    assert format_status_line([4], record(4, 4, 0.0, 320), 4, 0, "short", 80, unicode=False) == \
        "4 exit 4/4 cap 4 cpu   0% | short"


def test_live_display_rewrites_one_status_line_and_scrolls_segments_above_it():
    out, err = Terminal(), io.StringIO()
    display = make_display(4, out, err, plain=False, width=60)
    assert isinstance(display, LiveDisplay)
    for rec, partial in CHUNKS:
        display.chunk(rec, partial, overflows=0)
    display.segment(Segment("it has", [1, 2], 0.0, 0.96))
    display.finish("it has", ChunkTally().summary(0.96, 4))
    screen = out.getvalue()
    status_writes = screen.split("\r\x1b[2K")
    assert status_writes[1] == "▄ exit 2/4 cap 4 cpu  12% | it"
    assert status_writes[3] == "▄█▄ exit 2/4 cap 2 cpu  97% | it has"
    assert status_writes[4] == "segment 1 [0.00-0.96s]: it has\n"
    assert status_writes[5] == "▄█▄ exit 2/4 cap 2 cpu  97% | "  # the new segment's empty partial
    assert status_writes[-1].splitlines() == ["transcript: it has", "summary: audio 0.96 s | 0 chunks | overflows 0"]
    assert all(len(w.split("\n")[0]) < 60 for w in status_writes)


def test_plain_display_when_not_a_terminal_or_asked():
    assert type(make_display(4, io.StringIO(), io.StringIO(), plain=False)) is PlainDisplay
    assert type(make_display(4, Terminal(), io.StringIO(), plain=True)) is PlainDisplay
