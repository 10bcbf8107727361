"""What the app prints: a pure formatting layer (``format_*``) and two displays that use it.

* :class:`PlainDisplay` (stdout not a terminal, or ``--plain``): one line per decoded chunk
  (audio time, exit layer, cap, CPU load, and the partial text when it changed), one line per
  finished segment, the transcript and the summary at the end::

      [   0.32s] exit 2/4  cap 4  cpu  12%
      [   0.64s] exit 4/4  cap 4  cpu  12%  ~ the quick
      segment 1 [0.00-2.56s]: the quick brown fox
      transcript: the quick brown fox
      summary: audio 2.56 s | 8 chunks | average exit layer 2.50 of 4 | compute saved 31% | ...

* :class:`LiveDisplay` (a terminal): finished segments as lines, and one status line rewritten in
  place: the recent exit layers as a bar, the last chunk's exit, cap and CPU load, overflows, and
  the partial text.

Notices (overflows, device trouble) go to ``err``. Displays are called from one thread at a time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TextIO

from asr_ee.streaming import ChunkRecord, Segment

__all__ = ["SessionSummary", "ChunkTally", "format_chunk_line", "format_segment_line", "format_summary",
           "format_status_line", "exit_bar", "PlainDisplay", "LiveDisplay", "make_display"]

_BARS = "▁▂▃▄▅▆▇█"
_CLEAR = "\r\x1b[2K"


@dataclass
class SessionSummary:
    """The end-of-session numbers.

    Attributes:
        audio_s: audio received (at the model rate).
        chunks: chunks decoded.
        mean_exit_layer: frame-weighted mean exit layer (None without chunks).
        num_layers: layers of the encoder (the deepest exit).
        compute_saved: 1 - frame-weighted mean compute fraction of a full-depth chunk.
        rtf: real-time factor, compute time / audio time.
        overflows: input overflows the device reported.
    """

    audio_s: float
    chunks: int
    mean_exit_layer: float | None
    num_layers: int
    compute_saved: float | None
    rtf: float | None
    overflows: int = 0


class ChunkTally:
    """Running sums over every chunk of a session (the recognizer's trace may be bounded)."""

    def __init__(self) -> None:
        self.chunks = 0
        self.frames = 0
        self.exit_frames = 0.0
        self.fraction_frames = 0.0
        self.compute_ms = 0.0

    def add(self, record: ChunkRecord) -> None:
        self.chunks += 1
        self.frames += record.frames
        self.exit_frames += record.exit_layer * record.frames
        self.fraction_frames += record.compute_fraction * record.frames
        self.compute_ms += record.compute_ms

    def summary(self, audio_s: float, num_layers: int, overflows: int = 0) -> SessionSummary:
        mean_exit = self.exit_frames / self.frames if self.frames else None
        saved = 1.0 - self.fraction_frames / self.frames if self.frames else None
        rtf = self.compute_ms / 1000.0 / audio_s if audio_s > 0 and self.chunks else None
        return SessionSummary(audio_s, self.chunks, mean_exit, num_layers, saved, rtf, overflows)


# ---------------------------------------------------------------------------------------- formatting
def format_chunk_line(record: ChunkRecord, num_layers: int, new_partial: str | None = None) -> str:
    """``[ 1.28s] exit 2/4  cap 4  cpu  12%`` plus ``  ~ <partial>`` when the partial text changed."""
    line = (f"[{record.audio_end_ms / 1000.0:7.2f}s] exit {record.exit_layer}/{num_layers}  cap {record.cap}  "
            f"cpu {100.0 * record.cpu_load:3.0f}%")
    return line if new_partial is None else f"{line}  ~ {new_partial}"


def format_segment_line(index: int, segment: Segment) -> str:
    return f"segment {index} [{segment.start_s:.2f}-{segment.end_s:.2f}s]: {segment.text}"


def format_summary(summary: SessionSummary) -> str:
    parts = [f"audio {summary.audio_s:.2f} s", f"{summary.chunks} chunks"]
    if summary.mean_exit_layer is not None:
        parts.append(f"average exit layer {summary.mean_exit_layer:.2f} of {summary.num_layers}")
    if summary.compute_saved is not None:
        parts.append(f"compute saved {100.0 * summary.compute_saved:.0f}%")
    if summary.rtf is not None:
        parts.append(f"real-time factor {summary.rtf:.3f}")
    parts.append(f"overflows {summary.overflows}")
    return "summary: " + " | ".join(parts)


def exit_bar(exit_layers: list[int], num_layers: int, unicode: bool = True) -> str:
    """Recent exit layers, one character each: a bar height (or the layer digit without unicode)."""
    if not unicode:
        return "".join(str(layer) if layer < 10 else "+" for layer in exit_layers)
    levels = len(_BARS)
    return "".join(_BARS[min(levels, max(1, math.ceil(levels * layer / max(1, num_layers)))) - 1]
                   for layer in exit_layers)


def format_status_line(recent_exits: list[int], record: ChunkRecord | None, num_layers: int, overflows: int,
                       partial: str, width: int, unicode: bool = True) -> str:
    """One terminal line, at most ``width`` characters; the partial text keeps its newest end."""
    head = "listening"
    if record is not None:
        head = (f"{exit_bar(recent_exits, num_layers, unicode)} exit {record.exit_layer}/{num_layers} "
                f"cap {record.cap} cpu {100.0 * record.cpu_load:3.0f}%")
    if overflows:
        head += f" overflows {overflows}"
    room = width - len(head) - 3
    text = partial if len(partial) <= room else ("…" if unicode else "<") + partial[len(partial) - room + 1:]
    return f"{head} | {text}"[:width] if room > 0 else head[:width]


# ---------------------------------------------------------------------------------------- displays
class PlainDisplay:
    """Plain lines, for logs and pipes."""

    def __init__(self, num_layers: int, out: TextIO, err: TextIO) -> None:
        self.num_layers, self.out, self.err = num_layers, out, err
        self.partial = ""
        self.segments = 0

    def _line(self, text: str, stream: TextIO | None = None) -> None:
        print(text, file=stream or self.out, flush=True)

    def header(self, text: str) -> None:
        self._line(text)

    def chunk(self, record: ChunkRecord, partial: str, overflows: int) -> None:
        changed = partial if partial != self.partial else None
        self.partial = partial
        self._line(format_chunk_line(record, self.num_layers, changed))

    def segment(self, segment: Segment) -> None:
        self.segments += 1
        self.partial = ""
        self._line(format_segment_line(self.segments, segment))

    def notice(self, message: str) -> None:
        self._line(message, self.err)

    def finish(self, transcript: str, summary: SessionSummary) -> None:
        self._line(f"transcript: {transcript}")
        self._line(format_summary(summary))


class LiveDisplay(PlainDisplay):
    """A status line rewritten in place on a terminal; segments and notices scroll above it."""

    def __init__(self, num_layers: int, out: TextIO, err: TextIO, width: int = 100, history: int = 16,
                 unicode: bool = True) -> None:
        super().__init__(num_layers, out, err)
        self.width, self.unicode = width, unicode
        self.recent: deque[int] = deque(maxlen=history)
        self.record: ChunkRecord | None = None
        self.overflows = 0
        self.status_shown = False

    def _clear(self) -> None:
        if self.status_shown:
            self.out.write(_CLEAR)
            self.out.flush()
            self.status_shown = False

    def _status(self) -> None:
        self.out.write(_CLEAR + format_status_line(list(self.recent), self.record, self.num_layers, self.overflows,
                                                   self.partial, self.width - 1, self.unicode))
        self.out.flush()
        self.status_shown = True

    def chunk(self, record: ChunkRecord, partial: str, overflows: int) -> None:
        self.recent.append(record.exit_layer)
        self.record, self.partial, self.overflows = record, partial, overflows
        self._status()

    def segment(self, segment: Segment) -> None:
        self._clear()
        super().segment(segment)
        self._status()

    def notice(self, message: str) -> None:
        self._clear()
        super().notice(message)
        if self.record is not None:
            self._status()

    def finish(self, transcript: str, summary: SessionSummary) -> None:
        self._clear()
        super().finish(transcript, summary)


def make_display(num_layers: int, out: TextIO, err: TextIO, *, plain: bool, width: int = 100) -> PlainDisplay:
    """LiveDisplay on a terminal (unless ``plain``), else PlainDisplay."""
    is_tty = getattr(out, "isatty", lambda: False)()
    if plain or not is_tty:
        return PlainDisplay(num_layers, out, err)
    encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
    return LiveDisplay(num_layers, out, err, width=width, unicode=encoding.startswith("utf"))
