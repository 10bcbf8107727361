"""Live compute-load controller: before each chunk, the deepest exit the chunk may reach.

The controller is a pure policy over readings it is handed (:class:`LoadReading`) and a small
per-stream :class:`ControllerState`; the recognizer takes the readings (its clock, the stream's
backlog, a ``cpu_load`` callable), so tests drive it with a fake clock and a fake load.

Policy (see :class:`~asr_ee.streaming.config.ControllerConfig`):

* **overloaded** when the recent real-time factor is over ``target_rtf``, or the backlog beyond
  the chunk about to be decoded is over ``latency_budget_ms``, or the CPU load of other
  processes is over ``cpu_high`` while the real-time factor is already within ``relax_ratio``
  of the target (the busy machine is about to push it over): after ``lower_after_chunks`` such
  chunks the cap drops one exit;
* **relaxed** when the real-time factor and the backlog are both under ``relax_ratio`` x their
  limits: after ``raise_after_chunks`` such chunks in a row the cap rises one exit. The CPU load
  does not block a raise: a machine kept busy by others (a training run next door) is fine as
  long as this stream keeps up, which the real-time factor measures;
* in between, the cap holds. A raise that has to be taken back within the wait doubles the wait
  for the next raise (up to ``max_raise_after_chunks``), so the cap settles instead of oscillating
  between a depth that is too slow and one that is fast enough. A raise that held (the next change
  is another raise) halves the wait again, down to ``raise_after_chunks``: once the load is gone
  the cap climbs back quickly instead of one slow step at a time. And when the CPU load of other
  processes has fallen by ``cpu_drop`` since the last taken-back raise (the busy neighbour that
  made it fail has stopped), the wait is reset to ``raise_after_chunks`` at once.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import psutil

from asr_ee.streaming.config import ControllerConfig

__all__ = ["LoadReading", "ControllerState", "LoadController", "CpuLoadMonitor", "Pressure"]


@dataclass(frozen=True)
class LoadReading:
    """What the controller sees before a chunk.

    Attributes:
        rtf: real-time factor of the recent chunks (compute time / audio time); None before any.
        backlog_ms: audio received and not yet decoded.
        cpu_load: share of the machine's CPU used by other processes, 0..1.
    """

    rtf: float | None
    backlog_ms: float
    cpu_load: float


class Pressure(str, enum.Enum):
    """How a reading compares with the limits."""

    OVERLOADED = "overloaded"
    RELAXED = "relaxed"
    STEADY = "steady"


@dataclass
class ControllerState:
    """Per-stream controller memory.

    Attributes:
        cap: deepest exit index currently allowed.
        compute_s / audio_s: recent chunks' compute and audio durations (``rtf_window_chunks``).
        overloaded_run / relaxed_run: consecutive chunks in that condition.
        raise_after: chunks of calm needed before the next raise (doubles after a taken-back raise).
        since_raise: chunks since the last raise (None: no raise yet).
        last_change: "raise" or "lower": the cap's last move (None: none yet).
        backoff_cpu: highest CPU load of other processes seen at a taken-back raise since the wait
            was last reset (None: the wait is not backed off by a failure).
    """

    cap: int
    compute_s: deque[float]
    audio_s: deque[float]
    raise_after: int
    overloaded_run: int = 0
    relaxed_run: int = 0
    since_raise: int | None = None
    last_change: str | None = None
    backoff_cpu: float | None = None

    @classmethod
    def initial(cls, config: ControllerConfig, num_exits: int) -> "ControllerState":
        return cls(cap=num_exits - 1, compute_s=deque(maxlen=config.rtf_window_chunks),
                   audio_s=deque(maxlen=config.rtf_window_chunks), raise_after=config.raise_after_chunks)

    def recent_rtf(self) -> float | None:
        audio = sum(self.audio_s)
        return None if audio <= 0 else sum(self.compute_s) / audio


@dataclass
class LoadController:
    """The cap policy for an encoder with ``num_exits`` exits and chunks of ``chunk_ms`` audio.

    The backlog a stream always has (the chunk about to be decoded) does not count against the
    latency budget: only ``backlog_ms - chunk_ms`` does.
    """

    config: ControllerConfig
    num_exits: int
    chunk_ms: float = 0.0
    floor: int = field(init=False)

    def __post_init__(self) -> None:
        self.floor = min(self.config.min_exit_index, self.num_exits - 1)

    def initial_state(self) -> ControllerState:
        return ControllerState.initial(self.config, self.num_exits)

    def pressure(self, reading: LoadReading) -> Pressure:
        c = self.config
        rtf = reading.rtf if reading.rtf is not None else 0.0
        near_limit = reading.rtf is not None and rtf >= c.relax_ratio * c.target_rtf
        waiting_ms = reading.backlog_ms - self.chunk_ms
        if (rtf > c.target_rtf or waiting_ms > c.latency_budget_ms
                or (reading.cpu_load > c.cpu_high and near_limit)):
            return Pressure.OVERLOADED
        if rtf < c.relax_ratio * c.target_rtf and waiting_ms < c.relax_ratio * c.latency_budget_ms:
            return Pressure.RELAXED
        return Pressure.STEADY

    def next_cap(self, state: ControllerState, reading: LoadReading) -> int:
        """Update ``state`` with this chunk's reading and return the cap (exit index) for the chunk."""
        c = self.config
        pressure = self.pressure(reading)
        if state.since_raise is not None:
            state.since_raise += 1
        if state.backoff_cpu is not None and reading.cpu_load <= state.backoff_cpu - c.cpu_drop:
            state.raise_after, state.backoff_cpu = c.raise_after_chunks, None  # the neighbour has gone
        state.overloaded_run = state.overloaded_run + 1 if pressure == Pressure.OVERLOADED else 0
        state.relaxed_run = state.relaxed_run + 1 if pressure == Pressure.RELAXED else 0
        if state.overloaded_run >= c.lower_after_chunks and state.cap > self.floor:
            if state.since_raise is not None and state.since_raise <= state.raise_after:
                state.raise_after = min(2 * state.raise_after, c.max_raise_after_chunks)
                state.backoff_cpu = max(state.backoff_cpu or 0.0, reading.cpu_load)
            state.cap -= 1
            state.overloaded_run, state.last_change = 0, "lower"
            self._forget_rtf(state)
        elif state.relaxed_run >= state.raise_after and state.cap < self.num_exits - 1:
            if state.last_change == "raise":  # the previous raise held: the load is going away
                state.raise_after = max(state.raise_after // 2, c.raise_after_chunks)
            state.cap += 1
            state.relaxed_run, state.since_raise, state.last_change = 0, 0, "raise"
            self._forget_rtf(state)
        elif state.relaxed_run >= 4 * state.raise_after:
            state.raise_after, state.backoff_cpu = c.raise_after_chunks, None  # long calm: forget old failures
        return state.cap

    @staticmethod
    def _forget_rtf(state: ControllerState) -> None:
        """After a change of cap the old chunks' speed says little about the new depth."""
        state.compute_s.clear()
        state.audio_s.clear()

    @staticmethod
    def record(state: ControllerState, compute_s: float, audio_s: float) -> None:
        """Account a decoded chunk (its compute time and the audio it covered)."""
        state.compute_s.append(compute_s)
        state.audio_s.append(audio_s)


class CpuLoadMonitor:
    """Share (0..1) of the machine's CPU used by processes other than this one, from psutil.

    Readings are cached for ``min_interval_s`` (psutil measures between calls; very short
    intervals are noise).
    """

    def __init__(self, min_interval_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._process = psutil.Process()
        self._cpus = psutil.cpu_count() or 1
        psutil.cpu_percent(interval=None)
        self._process.cpu_percent(interval=None)
        self._last_time = clock()
        self._last_value = 0.0

    def __call__(self) -> float:
        now = self.clock()
        if now - self._last_time >= self.min_interval_s:
            total = psutil.cpu_percent(interval=None) / 100.0           # whole machine, 0..1
            own = self._process.cpu_percent(interval=None) / 100.0 / self._cpus
            self._last_value = min(1.0, max(0.0, total - own))
            self._last_time = now
        return self._last_value
