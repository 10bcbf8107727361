"""Live compute-load controller: before each chunk, how much compute the chunk may spend.

The controller is a pure policy over readings it is handed (:class:`LoadReading`: the stream's
recent real-time factor, its backlog, the CPU load of other processes and the recognizer's clock)
and a small per-stream :class:`ControllerState`; the recognizer takes the readings, so tests drive
it with a fake clock and a fake load.

**One ladder of levels.** Level 0 is the configured setting (the criterion's threshold, every exit
up to the top allowed). With ``move_budget`` (off by default: on the load benchmark the cap alone
held as well or better, at less WER; README "Streaming under CPU load"), the first
``budget_steps`` levels move the compute *budget*: each makes the
exit criterion one step cheaper (the recognizer's ladder of thresholds,
:func:`asr_ee.streaming.budget.threshold_ladder`: the learned gate's threshold moves along its dev
calibration, ``budget_step`` of full-depth compute a level; entropy, confidence and patience walk
their sweeps), so chunks that are easy still stop early and hard ones may still go deep. Below the
cheapest budget (at once without ``move_budget``) the *cap* (deepest exit allowed) drops, one exit
a level, down to ``min_exit_index``; the criterion still decides below the cap. A raise walks the
same ladder back (cap first, then budget).

**When to go down** (see :class:`~asr_ee.streaming.config.ControllerConfig`). The stream's excess
backlog (audio waiting beyond the chunk about to be decoded) and its growth rate, a least-squares
fit over the readings of the last ``trend_window_s`` seconds, are what matter when several streams
share a CPU: a stream decoded one by one with others waits for them, which its own real-time
factor does not see (each of nine streams runs at ~0.1 while together they fall behind), while its
backlog does. (Before the growth was watched, the load benchmark's backlog reached 1.5-1.8 s: only
the backlog bound of 1 s triggered, then the cap fell one exit per chunk.)

* **far behind**: the excess is over ``latency_budget_ms``: straight to the cheapest level;
* **overloaded**: the backlog grows clearly (fitted growth over ``growth_per_level``: the
  saw-tooth of arriving pieces and of waiting for the other streams stays under it), its
  projection ``horizon_s`` ahead is over ``lower_at_ratio`` x the budget and it is above where the
  last cut left it; or the stream's own real-time factor is over ``target_rtf``; or the CPU load of
  other processes is over ``cpu_high`` while that factor is already within ``relax_ratio`` of the
  target. After ``lower_after_chunks`` such chunks the level drops ``1 + growth /
  growth_per_level`` levels at once (a fast-growing backlog needs a big cut, not one exit a
  chunk), and at least twice the last cut when the last change was a cut (it was not enough);
* **relaxed**: the real-time factor under ``relax_ratio`` x its target, the excess under the
  lowering bound and not growing: after ``raise_after_chunks`` such chunks in a row the level
  rises one step. The CPU load does not block a raise: a machine kept busy by others (a training
  run next door) is fine as long as this stream keeps up;
* in between, the level holds. A raise that has to be taken back within the wait doubles the wait
  for the next raise (up to ``max_raise_after_chunks``), so the level settles instead of
  oscillating. A raise that held (the next change is another raise) halves the wait again, down to
  one chunk: once the load is gone the stream climbs back to full depth quickly. And when the CPU
  load of other processes has fallen by ``cpu_drop`` since the last taken-back raise (the busy
  neighbour that made it fail has stopped), the wait is reset at once.

On a quiet machine nothing is overloaded and every chunk runs at level 0 (full budget and depth).
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import psutil

from asr_ee.streaming.config import ControllerConfig

__all__ = ["LoadReading", "Setting", "ControllerState", "LoadController", "CpuLoadMonitor", "Pressure"]


@dataclass(frozen=True)
class LoadReading:
    """What the controller sees before a chunk.

    Attributes:
        rtf: real-time factor of the stream's recent chunks (its compute time / audio time); None
            before any.
        backlog_ms: audio received and not yet decoded.
        cpu_load: share of the machine's CPU used by other processes, 0..1.
        now_s: the recognizer's clock (seconds, monotonic); None: no backlog trend is fitted.
    """

    rtf: float | None
    backlog_ms: float
    cpu_load: float
    now_s: float | None = None


@dataclass(frozen=True)
class Setting:
    """What a chunk may spend.

    Attributes:
        cap: deepest exit index allowed.
        budget_step: steps along the criterion's ladder of thresholds toward cheaper (0: the
            configured threshold).
    """

    cap: int
    budget_step: int


class Pressure(str, enum.Enum):
    """How a reading compares with the limits."""

    FAR_BEHIND = "far behind"
    OVERLOADED = "overloaded"
    RELAXED = "relaxed"
    STEADY = "steady"


@dataclass
class ControllerState:
    """Per-stream controller memory.

    Attributes:
        level: steps down the ladder (0: full budget and depth).
        compute_s / audio_s: recent chunks' compute and audio durations (``rtf_window_chunks``).
        backlog: (clock, excess backlog ms) readings of the last ``trend_window_s``.
        overloaded_run / relaxed_run: consecutive chunks in that condition.
        raise_after: chunks of calm needed before the next raise (doubles after a taken-back raise).
        since_raise: chunks since the last raise (None: no raise yet).
        last_drop / lowered_at_ms: how many levels the last lowering dropped, and the excess
            backlog it was made at.
        last_change: "raise" or "lower": the level's last move (None: none yet).
        backoff_cpu: highest CPU load of other processes seen at a taken-back raise since the wait
            was last reset (None: the wait is not backed off by a failure).
    """

    level: int
    compute_s: deque[float]
    audio_s: deque[float]
    raise_after: int
    backlog: deque[tuple[float, float]] = field(default_factory=deque)
    overloaded_run: int = 0
    relaxed_run: int = 0
    since_raise: int | None = None
    last_drop: int = 0
    lowered_at_ms: float = 0.0
    last_change: str | None = None
    backoff_cpu: float | None = None

    @classmethod
    def initial(cls, config: ControllerConfig) -> "ControllerState":
        return cls(level=0, compute_s=deque(maxlen=config.rtf_window_chunks),
                   audio_s=deque(maxlen=config.rtf_window_chunks), raise_after=config.raise_after_chunks)

    def recent_rtf(self) -> float | None:
        audio = sum(self.audio_s)
        return None if audio <= 0 else sum(self.compute_s) / audio

    def growth(self, min_span_s: float) -> float | None:
        """Backlog growth rate (seconds of backlog per second of clock): the least-squares slope of
        the readings kept (the backlog is a saw-tooth, up by a piece of audio as it arrives, down
        by a chunk as it is decoded; the fit over a span of at least ``min_span_s`` smooths it);
        None over a shorter span."""
        if len(self.backlog) < 2 or self.backlog[-1][0] - self.backlog[0][0] < min_span_s:
            return None
        n = len(self.backlog)
        mean_t = sum(t for t, _ in self.backlog) / n
        mean_b = sum(b for _, b in self.backlog) / n
        spread = sum((t - mean_t) ** 2 for t, _ in self.backlog)
        return sum((t - mean_t) * (b - mean_b) for t, b in self.backlog) / spread / 1000.0


@dataclass
class LoadController:
    """The policy for an encoder with ``num_exits`` exits (up to the top one allowed), chunks of
    ``chunk_ms`` audio, and a criterion with ``budget_steps`` cheaper thresholds in its ladder.

    The backlog a stream always has (the chunk about to be decoded) does not count against the
    latency budget: only the excess, ``backlog_ms - chunk_ms``, does.
    """

    config: ControllerConfig
    num_exits: int
    chunk_ms: float = 0.0
    budget_steps: int = 0
    floor: int = field(init=False)

    def __post_init__(self) -> None:
        if self.budget_steps < 0:
            raise ValueError(f"budget_steps must be >= 0, got {self.budget_steps}")
        self.floor = min(self.config.min_exit_index, self.num_exits - 1)

    @property
    def lowest(self) -> int:
        """The cheapest level: every budget step taken, the cap at the floor."""
        return self.budget_steps + (self.num_exits - 1 - self.floor)

    def setting(self, level: int) -> Setting:
        """The cap and budget step of a level: the budget moves first, the cap after it."""
        return Setting(cap=self.num_exits - 1 - max(0, level - self.budget_steps),
                       budget_step=min(level, self.budget_steps))

    def initial_state(self) -> ControllerState:
        return ControllerState.initial(self.config)

    def pressure(self, reading: LoadReading, state: ControllerState | None = None) -> Pressure:
        """How ``reading`` compares with the limits, given the stream's backlog trend in ``state``
        (the reading already tracked, :meth:`_track_backlog`)."""
        c = self.config
        rtf = reading.rtf if reading.rtf is not None else 0.0
        near_limit = reading.rtf is not None and rtf >= c.relax_ratio * c.target_rtf
        excess_ms = reading.backlog_ms - self.chunk_ms
        if excess_ms > c.latency_budget_ms:
            return Pressure.FAR_BEHIND
        growth = None if state is None else state.growth(c.trend_window_s / 2)
        if (rtf > c.target_rtf or (reading.cpu_load > c.cpu_high and near_limit)
                or (state is not None and self._falling_behind(state, excess_ms, growth))):
            return Pressure.OVERLOADED
        if (rtf < c.relax_ratio * c.target_rtf and excess_ms < c.lower_at_ratio * c.latency_budget_ms
                and (growth or 0.0) < c.growth_per_level):
            return Pressure.RELAXED
        return Pressure.STEADY

    def _falling_behind(self, state: ControllerState, excess_ms: float, growth: float | None) -> bool:
        """The backlog grows clearly (a fitted growth over ``growth_per_level``: the saw-tooth of
        arrivals and of waiting for the other streams stays under it), its projection is over the
        lowering bound, and it is above where the last cut left it (a cut that is draining the
        backlog is given its time)."""
        c = self.config
        if growth is None or growth <= c.growth_per_level:
            return False
        if excess_ms + 1000.0 * c.horizon_s * growth <= c.lower_at_ratio * c.latency_budget_ms:
            return False
        return state.last_change != "lower" or excess_ms > state.lowered_at_ms

    def decide(self, state: ControllerState, reading: LoadReading) -> Setting:
        """Update ``state`` with this chunk's reading and return what the chunk may spend."""
        c = self.config
        self._track_backlog(state, reading)
        pressure = self.pressure(reading, state)
        growth = state.growth(c.trend_window_s / 2)
        if state.since_raise is not None:
            state.since_raise += 1
        if state.backoff_cpu is not None and reading.cpu_load <= state.backoff_cpu - c.cpu_drop:
            state.raise_after, state.backoff_cpu = c.raise_after_chunks, None  # the neighbour has gone
        lowering = pressure in (Pressure.FAR_BEHIND, Pressure.OVERLOADED)
        state.overloaded_run = state.overloaded_run + 1 if lowering else 0
        state.relaxed_run = state.relaxed_run + 1 if pressure == Pressure.RELAXED else 0
        if state.level < self.lowest and (pressure == Pressure.FAR_BEHIND or state.overloaded_run >= c.lower_after_chunks):
            drop = self.lowest if pressure == Pressure.FAR_BEHIND else \
                1 + math.floor(max(0.0, growth or 0.0) / c.growth_per_level)
            if state.last_change == "lower":
                drop = max(drop, 2 * state.last_drop)  # the last cut was not enough: cut twice as deep
            self._lower(state, min(self.lowest, state.level + drop), reading)
        elif state.relaxed_run >= state.raise_after and state.level > 0:
            if state.last_change == "raise":  # the previous raise held: the load is going away
                state.raise_after = max(state.raise_after // 2, 1)
            state.level -= 1
            state.relaxed_run, state.since_raise, state.last_change = 0, 0, "raise"
            self._forget_rtf(state)
        elif state.relaxed_run >= 4 * state.raise_after:
            state.raise_after, state.backoff_cpu = c.raise_after_chunks, None  # long calm: forget old failures
        return self.setting(state.level)

    def _lower(self, state: ControllerState, level: int, reading: LoadReading) -> None:
        c = self.config
        if state.since_raise is not None and state.since_raise <= state.raise_after:
            state.raise_after = min(2 * state.raise_after, c.max_raise_after_chunks)  # a raise taken back
            state.backoff_cpu = max(state.backoff_cpu or 0.0, reading.cpu_load)
        state.last_drop, state.level = level - state.level, level
        state.lowered_at_ms = reading.backlog_ms - self.chunk_ms
        state.overloaded_run, state.last_change = 0, "lower"
        self._forget_rtf(state)

    def _track_backlog(self, state: ControllerState, reading: LoadReading) -> None:
        """Keep this reading's excess backlog; readings older than the trend window drop out."""
        if reading.now_s is None:
            return
        state.backlog.append((reading.now_s, reading.backlog_ms - self.chunk_ms))
        while reading.now_s - state.backlog[0][0] > self.config.trend_window_s:
            state.backlog.popleft()

    @staticmethod
    def _forget_rtf(state: ControllerState) -> None:
        """After a change of level the old chunks' speed says little about the new level."""
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
