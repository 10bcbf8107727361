"""The live compute-load controller, driven by fake readings, a fake clock and a fake CPU load."""

from __future__ import annotations

import pytest
import torch

from asr_ee.config import ConfigError
from asr_ee.exits.criteria import ExitCriterion
from asr_ee.exits.gate import FEATURES, ExitGate
from asr_ee.models import SkipPolicy
from asr_ee.streaming import ControllerConfig, LoadController, LoadReading, Recognizer, StreamingConfig
from asr_ee.streaming.controller import CpuLoadMonitor, Setting
from asr_ee.streaming.simulate import run_stream
from controller_sim import simulate
from streaming_helpers import FakeClock, synthetic_speech

CALM = LoadReading(rtf=0.1, backlog_ms=100.0, cpu_load=0.1)
BUSY_CPU = LoadReading(rtf=0.55, backlog_ms=100.0, cpu_load=0.99)  # near the limit on a busy machine
BUSY_BUT_FAST = LoadReading(rtf=0.1, backlog_ms=100.0, cpu_load=0.99)
SLOW = LoadReading(rtf=1.5, backlog_ms=100.0, cpu_load=0.1)
BEHIND = LoadReading(rtf=0.1, backlog_ms=5000.0, cpu_load=0.1)
MIDDLE = LoadReading(rtf=0.6, backlog_ms=100.0, cpu_load=0.1)  # between relaxed and overloaded


def _caps(controller: LoadController, readings: list[LoadReading]) -> list[int]:
    state = controller.initial_state()
    return [controller.decide(state, r).cap for r in readings]


def _timed(backlogs_ms: list[float], period_s: float = 0.32, rtf: float = 0.1) -> list[LoadReading]:
    """Readings one chunk period apart on a fake clock, with the given backlogs."""
    return [LoadReading(rtf, b, 0.1, now_s=100.0 + period_s * i) for i, b in enumerate(backlogs_ms)]


@pytest.mark.parametrize("pressure", [BUSY_CPU, SLOW])
def test_load_cuts_deeper_while_it_lasts_and_calm_restores_full_depth(pressure: LoadReading) -> None:
    """Each overloaded chunk right after a cut cuts twice as deep as the last (one exit, then two:
    the floor); calm climbs back, the wait halving while raises hold."""
    controller = LoadController(ControllerConfig(raise_after_chunks=3), num_exits=4)
    caps = _caps(controller, [CALM] * 3 + [pressure] * 5 + [CALM] * 8)
    assert caps[:3] == [3, 3, 3]
    assert caps[3:8] == [2, 0, 0, 0, 0]
    assert caps[8:] == [0, 0, 1, 1, 1, 2, 3, 3]  # waits 3, 3, then 1: the raises held, the wait halved


def test_far_behind_goes_straight_to_the_floor() -> None:
    controller = LoadController(ControllerConfig(latency_budget_ms=500), num_exits=6, chunk_ms=320, budget_steps=4)
    state = controller.initial_state()
    assert controller.decide(state, LoadReading(0.1, 320 + 400, 0.0)) == Setting(cap=5, budget_step=0)  # no trend
    assert controller.decide(state, LoadReading(0.1, 320 + 501, 0.0)) == Setting(cap=0, budget_step=4)
    assert controller.lowest == 9 and state.level == 9


def test_the_budget_moves_before_the_cap_and_comes_back_after_it() -> None:
    controller = LoadController(ControllerConfig(raise_after_chunks=1), num_exits=4, budget_steps=3)
    state = controller.initial_state()
    down = [controller.decide(state, SLOW) for _ in range(4)]
    assert down == [Setting(3, 1), Setting(3, 3), Setting(0, 3), Setting(0, 3)]  # levels 1, 3, 7 (the floor)
    up = [controller.decide(state, CALM) for _ in range(10)]
    assert [s.cap for s in up[:3]] == [1, 2, 3] and [s.budget_step for s in up[:3]] == [3, 3, 3]  # cap first
    assert up[3:6] == [Setting(3, 2), Setting(3, 1), Setting(3, 0)] and up[-1] == Setting(3, 0)
    levels = [controller.setting(level) for level in range(controller.lowest + 1)]
    assert all(s.budget_step == 3 for s in levels if s.cap < 3)  # the cap moves only with the budget spent


def test_a_growing_backlog_is_cut_before_it_reaches_the_bound_and_the_faster_the_deeper() -> None:
    """The backlog's growth rate, fitted once the readings span half the trend window, is projected
    ``horizon_s`` ahead: a backlog growing at 0.31 s/s is cut at the first fit (350 ms of excess,
    projected 660 ms, over the 250 ms bound), by 1 + 0.31 / 0.05 = 7 levels at once; one growing at
    0.11 s/s at 155 ms (projected 264 ms) by 3. While it keeps rising each cut is twice the last."""
    config = ControllerConfig(latency_budget_ms=500, trend_window_s=1.5, horizon_s=1.0, growth_per_level=0.05)
    for step_ms, expected in ((100.0, [0, 0, 0, 7, 11]), (35.0, [0, 0, 0, 3, 9])):
        controller = LoadController(config, num_exits=6, chunk_ms=320, budget_steps=6)
        state = controller.initial_state()
        levels = []
        for reading in _timed([320 + 50 + step_ms * i for i in range(5)]):
            controller.decide(state, reading)
            levels.append(state.level)
        assert levels == expected


def test_a_quiet_saw_tooth_backlog_keeps_full_depth() -> None:
    """Audio arriving in 100 ms pieces and decoded in 320 ms chunks makes the backlog a saw-tooth
    (here 40-120 ms of excess): no growth, no cut, over a minute of chunks."""
    controller = LoadController(ControllerConfig(), num_exits=6, chunk_ms=320, budget_steps=6)
    state = controller.initial_state()
    saw = [440, 420, 400, 380, 360] * 40
    assert {controller.decide(state, r) for r in _timed(saw)} == {Setting(cap=5, budget_step=0)}


def test_a_busy_machine_alone_neither_lowers_the_cap_nor_blocks_a_raise() -> None:
    controller = LoadController(ControllerConfig(raise_after_chunks=2), num_exits=4)
    assert _caps(controller, [BUSY_BUT_FAST] * 5) == [3] * 5
    assert _caps(controller, [SLOW, SLOW] + [BUSY_BUT_FAST] * 5) == [2, 0, 0, 1, 1, 2, 3]
    assert _caps(controller, [LoadReading(None, 100.0, 0.99)] * 3) == [3] * 3  # unknown RTF: no CPU rule


def test_the_chunk_being_decoded_does_not_count_against_the_latency_budget(tiny_pretrained) -> None:
    controller = LoadController(ControllerConfig(latency_budget_ms=1000), num_exits=4, chunk_ms=1280)
    assert _caps(controller, [LoadReading(0.1, 1280 + 400, 0.0)] * 3) == [3] * 3
    assert _caps(controller, [LoadReading(0.1, 1280 + 1100, 0.0)] * 3) == [0, 0, 0]
    clock = FakeClock(tick=0.001)
    config = StreamingConfig(chunk_frames=32, criterion=None, endpoint=None)  # default controller
    result = run_stream(Recognizer(tiny_pretrained, config, clock=clock, cpu_load=lambda: 0.0),
                        synthetic_speech(20.0), clock=clock)
    assert {c.cap for c in result.chunks} == {4}  # fast mode with big chunks: nothing to lower


def test_hysteresis_holds_the_cap_between_the_limits_and_backs_off_failed_raises() -> None:
    config = ControllerConfig(raise_after_chunks=2, max_raise_after_chunks=8, min_exit_index=1)
    controller = LoadController(config, num_exits=4)
    state = controller.initial_state()
    caps = [controller.decide(state, r).cap for r in [SLOW] * 4 + [MIDDLE] * 6]
    assert caps == [2, 1, 1, 1] + [1] * 6  # floor at min_exit_index; the middle band holds
    caps = [controller.decide(state, r).cap for r in [CALM, CALM, SLOW]]
    assert caps == [1, 2, 1] and state.raise_after == 4  # a raise taken back: wait twice as long
    caps = [controller.decide(state, r).cap for r in [CALM] * 4 + [SLOW]]
    assert caps == [1, 1, 1, 2, 1] and state.raise_after == 8
    assert [controller.decide(state, CALM).cap for _ in range(8)][-2:] == [1, 2]


def test_raises_that_hold_shorten_the_wait_again() -> None:
    """After a long backed-off wait, each raise that holds halves the next wait (down to one
    chunk), so the cap returns to full depth soon after the load is gone."""
    config = ControllerConfig(raise_after_chunks=2, max_raise_after_chunks=16)
    controller = LoadController(config, num_exits=6)
    state = controller.initial_state()
    state.level, state.raise_after, state.last_change = 4, 16, "lower"
    caps = [controller.decide(state, CALM).cap for _ in range(50)]
    rises = [i + 1 for i in range(1, len(caps)) if caps[i] > caps[i - 1]] + ([1] if caps[0] > 1 else [])
    assert sorted(rises) == [16, 32, 40, 44]  # waits 16, 16, 8, 4: the first raise after a drop has to hold first
    assert caps[-1] == 5 and state.raise_after == 2
    assert controller.decide(state, SLOW).cap == 4  # and load still lowers it at once


def test_a_backed_off_wait_resets_when_the_busy_neighbour_goes() -> None:
    """Raises taken back while other processes load the CPU back the wait off; once that load
    falls by cpu_drop the wait is the configured one again. The same story with the CPU staying
    busy keeps the long wait (the control)."""
    config = ControllerConfig(raise_after_chunks=2, max_raise_after_chunks=16, cpu_drop=0.3)
    busy_calm = LoadReading(rtf=0.1, backlog_ms=100.0, cpu_load=0.8)
    busy_slow = LoadReading(rtf=1.5, backlog_ms=100.0, cpu_load=0.8)
    quiet_calm = LoadReading(rtf=0.1, backlog_ms=100.0, cpu_load=0.05)
    waits = {}
    for name, after in (("neighbour gone", quiet_calm), ("neighbour stays", busy_calm)):
        controller = LoadController(config, num_exits=6)
        state = controller.initial_state()
        assert [controller.decide(state, busy_slow).cap for _ in range(3)] == [4, 2, 0]
        state.level = 3  # from cap 2
        for expected_wait in (2, 4, 8):  # three raises, each taken back at once: the wait doubles
            caps = [controller.decide(state, busy_calm).cap for _ in range(expected_wait)]
            assert caps[-1] == 3 and caps[:-1] == [2] * (expected_wait - 1)
            state.last_drop = 0  # each taken-back raise drops one level, as a first cut
            assert controller.decide(state, busy_slow).cap == 2
        assert state.raise_after == 16 and state.backoff_cpu == 0.8
        caps = [controller.decide(state, after).cap for _ in range(20)]
        waits[name] = next(i + 1 for i, cap in enumerate(caps) if cap > 2)
    assert waits == {"neighbour gone": 2, "neighbour stays": 16}


@pytest.mark.parametrize("move_budget", [True, False])
def test_simulated_overload_keeps_the_backlog_under_a_second_and_full_depth_returns(move_budget: bool) -> None:
    """Nine streams decoded one by one share a CPU (controller_sim: a chunk of 320 ms costs 20 ms at
    full depth, 58 % of the CPU for all nine); from 10 s to 24 s the machine is 2.5x slower. Full
    depth falls behind by seconds; the controller holds the backlog under a second (the chunk
    being decoded included), spends its budget before it caps, and is back at full depth once the
    load has gone (a stream whose raises failed under load waits longer: within 20 s, most in a
    few). On the quiet machine (no slowdown) it never leaves full depth."""
    loaded = lambda t: 2.5 if 10.0 <= t < 24.0 else 1.0  # noqa: E731
    config = ControllerConfig(move_budget=move_budget)
    steps = 6 if move_budget else 0
    fixed = simulate(None, streams=9, seconds=60, full_chunk_s=0.0205, slowdown=loaded)
    controlled = simulate(config, streams=9, seconds=60, full_chunk_s=0.0205, slowdown=loaded, budget_steps=steps)
    quiet = simulate(config, streams=9, seconds=60, full_chunk_s=0.0205, slowdown=lambda t: 1.0, budget_steps=steps)
    assert fixed.max_backlog_ms() > 4000
    assert controlled.max_backlog_ms() < 1000 and max(controlled.levels(10, 24)) > 0
    assert all(c.setting.budget_step == steps for c in controlled.chunks if c.setting.cap < 5)
    assert set(controlled.levels(44, 60)) == {0}
    assert set(quiet.levels()) == {0} and quiet.max_backlog_ms() < 320 + 250


def test_controller_config_is_validated() -> None:
    from asr_ee.config import ConfigError

    for bad in (dict(target_rtf=0), dict(cpu_high=1.5), dict(relax_ratio=1.5), dict(cpu_drop=0.0),
                dict(raise_after_chunks=10, max_raise_after_chunks=5)):
        with pytest.raises(ConfigError):
            ControllerConfig(**bad)


def test_recognizer_lowers_the_cap_under_fake_load_and_raises_it_again(tiny_pretrained) -> None:
    """Fake clock (compute time per chunk = ``tick``, audio per chunk 0.16 s), fake CPU load."""
    clock, load = FakeClock(tick=0.01), {"value": 0.0}
    config = StreamingConfig(chunk_frames=4, criterion=None, endpoint=None, skip_policy=SkipPolicy.COPY,
                             controller=ControllerConfig(raise_after_chunks=2, latency_budget_ms=60_000))
    recognizer = Recognizer(tiny_pretrained, config, clock=clock, cpu_load=lambda: load["value"])
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, synthetic_speech(14.0))
    phases = {"calm": (0.0, 0.01, 8), "busy cpu, rtf 0.56": (0.99, 0.09, 14), "calm again": (0.0, 0.01, 20),
              "slow, rtf 3": (0.0, 0.5, 10), "calm at last": (0.0, 0.01, 20)}
    caps = {}
    for name, (cpu, tick, chunks) in phases.items():
        load["value"], clock.tick = cpu, tick
        for _ in range(chunks):
            recognizer.decode(stream)
        caps[name] = [c.cap for c in recognizer.result(stream).chunks[-chunks:]]
    assert caps["calm"] == [4] * 8
    busy = caps["busy cpu, rtf 0.56"]
    assert busy[:4] == [4] * 4 and busy[-1] == 1  # the 4-chunk RTF window lags, then deeper cuts
    assert all(a >= b for a, b in zip(busy, busy[1:]))
    assert caps["calm again"][-1] == 4 and caps["slow, rtf 3"][-1] == 1 and caps["calm at last"][-1] == 4
    trace = recognizer.result(stream).chunks
    assert [c.cpu_load for c in trace[8:22]] == [0.99] * 14 and trace[0].cpu_load == 0.0
    assert all(c.exit_layer <= c.cap for c in trace)
    assert all(c.compute_ms == pytest.approx(10.0) for c in trace[:8])
    assert trace[-1].backlog_ms == pytest.approx(14000 - 71 * 4 * 40)  # all audio was accepted up front


def _constant_gate(probabilities: list[float], calibration: list[tuple[float, float, float]]) -> ExitGate:
    """A gate whose probability at exit k is ``probabilities[k]`` whatever the chunk (zero weights,
    the bias alone), with a hand-made calibration for the top exit."""
    k = len(probabilities)
    bias = torch.logit(torch.tensor(probabilities))
    return ExitGate(list(range(1, k + 2)), 0, torch.zeros(k, len(FEATURES)), torch.ones(k, len(FEATURES)),
                    torch.zeros(k, len(FEATURES)), bias, "constant", calibration={k: calibration})


def test_the_recognizer_spends_the_gate_budget_before_it_caps_and_restores_both(tiny_pretrained) -> None:
    """The gate says 0.3, 0.6, 0.9 at exits 0-2 of the tiny model (4 exits) on every chunk, so the
    exit a chunk takes shows the threshold it was given: 0.95 (configured) -> exit 3; its ladder
    along the calibration, 0.8 -> exit 2, 0.5 -> exit 1, 0.2 -> exit 0. Under a slow fake clock the
    exits fall before the cap does; the cap falls only after; calm brings both back."""
    gate = _constant_gate([0.3, 0.6, 0.9], [(0.0, 0.3, 1), (0.2, 0.4, 1), (0.5, 0.6, 2), (0.8, 0.8, 3), (0.95, 1.0, 4)])
    clock = FakeClock(tick=0.01)
    config = StreamingConfig(chunk_frames=4, criterion=ExitCriterion("gate", 0.95), endpoint=None,
                             skip_policy=SkipPolicy.COPY,
                             controller=ControllerConfig(raise_after_chunks=2, latency_budget_ms=60_000, budget_step=0.2,
                                                         move_budget=True))
    recognizer = Recognizer(tiny_pretrained, config, clock=clock, cpu_load=lambda: 0.0, gate=gate)
    assert recognizer.thresholds == [0.95, 0.8, 0.5, 0.2] and recognizer.controller.lowest == 6
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, synthetic_speech(10.0))
    seen = []
    for tick, chunks in [(0.01, 4), (0.5, 8), (0.01, 30)]:  # calm, RTF 3, calm
        clock.tick = tick
        for _ in range(chunks):
            recognizer.decode(stream)
            chunk = recognizer.result(stream).chunks[-1]
            seen.append((chunk.exit_layer, chunk.cap))
    assert seen[:4] == [(4, 4)] * 4
    loaded = seen[4:12]
    loaded, calm = seen[4:12], seen[12:]
    # the RTF window lags a chunk; then one level (0.8), two more (0.2: the budget spent), the floor
    assert loaded == [(4, 4), (3, 4), (1, 4)] + [(1, 1)] * 5
    back = calm.index((4, 4))
    assert calm[back - 5:back + 1] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 4), (3, 4)][1:] + [(4, 4)]  # cap, then budget
    assert set(calm[back:]) == {(4, 4)}


def _caps_and_beams_through_a_busy_phase(pretrained, beam: int, scale_beam: bool = True,
                                         max_exit_layer: int | None = None) -> list[tuple[int, int]]:
    """(cap, beam width) per chunk of a beam-search stream: 4 calm chunks, 12 on a busy machine
    with RTF 0.56, 16 calm again (fake clock and CPU load)."""
    clock, load = FakeClock(tick=0.01), {"value": 0.0}
    config = StreamingConfig(chunk_frames=4, criterion=None, endpoint=None, decoding="beam", beam=beam,
                             max_exit_layer=max_exit_layer,
                             controller=ControllerConfig(raise_after_chunks=2, latency_budget_ms=60_000,
                                                         scale_beam=scale_beam))
    recognizer = Recognizer(pretrained, config, clock=clock, cpu_load=lambda: load["value"])
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, synthetic_speech(8.0))
    seen = []
    for cpu, tick, chunks in [(0.0, 0.01, 4), (0.99, 0.09, 12), (0.0, 0.01, 16)]:
        load["value"], clock.tick = cpu, tick
        for _ in range(chunks):
            recognizer.decode(stream)
            seen.append((recognizer.result(stream).chunks[-1].cap, stream.decoder.beam))
    return seen


@pytest.mark.parametrize("scale_beam", [True, False])
def test_the_beam_narrows_with_the_cap(tiny_pretrained, scale_beam: bool) -> None:
    """Under load the beam search's width follows the cap (its cost is per hypothesis), and comes
    back with it; with ``scale_beam: false`` it stays."""
    widths = _caps_and_beams_through_a_busy_phase(tiny_pretrained, beam=8, scale_beam=scale_beam)
    layers = tiny_pretrained.encoder.cfg.exit_layers
    if scale_beam:
        assert all(beam == max(1, round(8 * (layers.index(cap) + 1) / len(layers))) for cap, beam in widths)
        assert min(beam for _, beam in widths) < 8 and widths[-1][1] == 8
    else:
        assert {beam for _, beam in widths} == {8} and min(cap for cap, _ in widths) < layers[-1]


def test_controller_keeps_a_realtime_backlog_bounded_where_full_depth_falls_behind(tiny_pretrained,
                                                                                   monkeypatch) -> None:
    """Simulated real time on a fake clock: every encoder block costs 50 ms of a 160 ms chunk, so
    full depth (4 blocks) runs at RTF 1.25 and falls behind; the controller settles at 2 blocks
    (RTF 0.63, under the 0.7 target) and keeps up."""
    clock = FakeClock()
    infer = tiny_pretrained.encoder.infer

    def slow_infer(*args, **kwargs):
        out = infer(*args, **kwargs)
        clock.advance(0.05 * out.blocks_run)
        return out

    monkeypatch.setattr(tiny_pretrained.encoder, "infer", slow_infer)
    audio = synthetic_speech(20.0)
    backlogs, caps = {}, {}
    for name, controller in (("fixed", None), ("controlled", ControllerConfig(latency_budget_ms=500))):
        config = StreamingConfig(chunk_frames=4, criterion=None, endpoint=None, controller=controller,
                                 skip_policy=SkipPolicy.COPY)
        recognizer = Recognizer(tiny_pretrained, config, clock=clock, cpu_load=lambda: 0.0)
        result = run_stream(recognizer, audio, realtime=True, clock=clock, sleep=clock.sleep)
        backlogs[name] = [c.backlog_ms for c in result.chunks]
        caps[name] = [c.cap for c in result.chunks]
    fixed, controlled = backlogs["fixed"], backlogs["controlled"]
    quarter = len(fixed) // 4
    assert fixed[3 * quarter] - fixed[2 * quarter] > 1000 and fixed[2 * quarter] - fixed[quarter] > 1000
    assert max(controlled) <= 500 + 160 + 100  # the budget, a chunk, a piece of arrival
    assert set(caps["fixed"]) == {4} and set(caps["controlled"][quarter:]) == {2}


def test_cpu_load_monitor_counts_other_processes_only(monkeypatch) -> None:
    import psutil

    readings = iter([None, 80.0, 30.0])  # machine-wide percent: priming call, then two readings
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: next(readings) or 0.0)
    monkeypatch.setattr(psutil, "cpu_count", lambda: 2)
    monkeypatch.setattr(psutil.Process, "cpu_percent", lambda self, interval=None: 100.0)  # one core
    now = {"t": 0.0}
    monitor = CpuLoadMonitor(min_interval_s=1.0, clock=lambda: now["t"])
    assert monitor() == 0.0               # nothing measured yet
    now["t"] = 1.0
    assert monitor() == pytest.approx(0.3)  # 80 % of the machine, 50 % of it ours
    now["t"] = 1.5
    assert monitor() == pytest.approx(0.3)  # cached within min_interval_s
    now["t"] = 2.5
    assert monitor() == 0.0               # 30 % of the machine, all ours


def test_max_exit_layer_is_the_ceiling_of_criterion_and_controller(tiny_pretrained) -> None:
    """``max_exit_layer`` 3 (exit index 2 of 4): with no criterion every chunk stops there and the
    stream equals a fixed exit 2 stream; the controller's cap starts, drops and rises below it; the
    beam narrows relative to it."""
    audio = synthetic_speech(6.0)
    base = dict(chunk_frames=4, endpoint=None, skip_policy=SkipPolicy.COPY, controller=None)
    capped = run_stream(Recognizer(tiny_pretrained, StreamingConfig(criterion=None, max_exit_layer=3, **base)), audio)
    fixed = run_stream(Recognizer(tiny_pretrained, StreamingConfig(criterion=ExitCriterion("fixed", 2), **base)),
                       audio)
    assert {c.exit_layer for c in capped.chunks} == {3} and {c.cap for c in capped.chunks} == {3}
    assert capped.text == fixed.text and [c.exit_layer for c in capped.chunks] == [c.exit_layer for c in fixed.chunks]
    assert [c.compute_fraction for c in capped.chunks] == [c.compute_fraction for c in fixed.chunks]

    seen = _caps_and_beams_through_a_busy_phase(tiny_pretrained, beam=6, max_exit_layer=3)
    caps = [cap for cap, _ in seen]
    assert caps[:4] == [3] * 4 and min(caps) == 1 and caps[-1] == 3 and max(caps) == 3
    assert all(beam == max(1, round(6 * cap / 3)) for cap, beam in seen)  # exits 1..3 are indices 0..2


@pytest.mark.parametrize("layer", [5, 0])
def test_max_exit_layer_must_be_one_of_the_exits(tiny_pretrained, layer: int) -> None:
    with pytest.raises(ConfigError, match="max_exit_layer"):
        Recognizer(tiny_pretrained, StreamingConfig(max_exit_layer=layer, controller=None))
