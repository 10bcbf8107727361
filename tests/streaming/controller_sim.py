"""A model-free simulation of live streams sharing one CPU under the load controller.

Streams are decoded one by one, as :func:`asr_ee.streaming.simulate.run_streams` with
``realtime=True, batch=False`` decodes them (independent devices sharing a CPU): audio arrives in
pieces of ``piece_ms``, a chunk is ready when ``chunk_ms`` (plus ``lookahead_ms``) is waiting, and
every ready stream is decoded once per round. A chunk costs ``full_chunk_s`` x the share of
full-depth compute its setting spends x the machine's slowdown at that moment (e.g. 2.5 while
CPU-burning processes take the cores) x a seeded log-normal jitter (``jitter``: its sigma; other
work on a shared machine makes chunk times vary). Deterministic: no model, no real clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable

from asr_ee.streaming import ControllerConfig
from asr_ee.streaming.controller import LoadController, LoadReading, Setting


@dataclass
class SimChunk:
    stream: int
    at_s: float
    backlog_ms: float
    setting: Setting
    level: int


@dataclass
class SimRun:
    chunks: list[SimChunk] = field(default_factory=list)

    def max_backlog_ms(self, start_s: float = 0.0, end_s: float = float("inf")) -> float:
        return max((c.backlog_ms for c in self.chunks if start_s <= c.at_s < end_s), default=0.0)

    def levels(self, start_s: float = 0.0, end_s: float = float("inf")) -> list[int]:
        return [c.level for c in self.chunks if start_s <= c.at_s < end_s]


def default_share(setting: Setting, num_exits: int, budget_steps: int) -> float:
    """Share of full-depth compute: a fixed part (features, decoding), the encoder up to the cap,
    less a little per budget step (cheaper thresholds stop more chunks early)."""
    depth = (setting.cap + 1) / num_exits
    return 0.15 + 0.85 * depth * (1.0 - 0.3 * setting.budget_step / max(1, budget_steps))


def simulate(config: ControllerConfig | None, *, streams: int, seconds: float, full_chunk_s: float,
             slowdown: Callable[[float], float], num_exits: int = 6, budget_steps: int = 6,
             chunk_ms: float = 320.0, piece_ms: float = 100.0, lookahead_ms: float = 60.0, jitter: float = 0.0,
             seed: int = 0,
             cpu_load: Callable[[float], float] = lambda t: 0.0,
             share: Callable[[Setting, int, int], float] = default_share) -> SimRun:
    """Run ``streams`` live streams of ``seconds`` audio; ``config`` None: fixed full depth."""
    controller = None if config is None else LoadController(config, num_exits, chunk_ms=chunk_ms,
                                                            budget_steps=budget_steps)
    states = [None if controller is None else controller.initial_state() for _ in range(streams)]
    decoded_ms = [0.0] * streams
    total_ms = 1000.0 * seconds
    now, run, rng = 0.0, SimRun(), random.Random(seed)
    full = Setting(cap=num_exits - 1, budget_step=0)
    while min(decoded_ms) + chunk_ms <= total_ms:
        received_ms = min(total_ms, piece_ms * int(1000.0 * now / piece_ms + 1e-9))
        busy = False
        for i, state in enumerate(states):  # one round: every ready stream once, one by one
            backlog = received_ms - decoded_ms[i]
            if backlog < chunk_ms + (lookahead_ms if received_ms < total_ms else 0.0):
                continue
            setting, level = full, 0
            if controller is not None:
                setting = controller.decide(state, LoadReading(state.recent_rtf(), backlog, cpu_load(now), now))
                level = state.level
            run.chunks.append(SimChunk(i, now, backlog, setting, level))
            cost = full_chunk_s * share(setting, num_exits, budget_steps) * slowdown(now) * math.exp(jitter * rng.gauss(0, 1))
            now += cost
            if controller is not None:
                controller.record(state, cost, chunk_ms / 1000.0)
            decoded_ms[i] += chunk_ms
            busy = True
        if not busy:  # wait for the next piece of audio
            now = piece_ms / 1000.0 * (int(1000.0 * now / piece_ms + 1e-9) + 1)
    return run
