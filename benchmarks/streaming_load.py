"""The load-aware controller under CPU load: live (simulated real-time) streams, once at fixed full
depth and once with dynamic exits under the controller as configured by default (the cap moves,
the criterion's threshold stays; optionally also with the compute budget moved first:
``--budget-first``), while CPU-burning processes (started and stopped here, each with its own
deadline) load the machine for the middle part of each run.

    python benchmarks/streaming_load.py [--model exp/small/model.pt] [--cuts DATA/cuts_test.jsonl.gz]
        [--seconds 45] [--streams auto] [--burners 2xCPUs] [--criterion entropy|gate|...] [--budget-first]
        [--plot streaming_load.png]

``--streams auto`` picks how many concurrent streams (decoded one by one, as independent devices
sharing the CPU) make full depth use ~60 % of one core when the machine is quiet (one small model
alone is too fast to fall behind), so that the load tips full depth over real time. The load
should leave this process between ~35 % and ~60 % of a core: ``--burners`` 2 x CPUs does on an
otherwise idle machine (fewer burners if something else already runs). Writes a PNG of backlog,
latency and exit depth over time for both runs and prints a summary: with the controller the
backlog stays bounded while full depth falls behind. Latency of a chunk = when its result came
out - when its audio ended. The plot's last panel shows the first stream's controller level (with
``--budget-first``: the criterion's threshold steps toward cheaper, then the cap).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from streaming_common import TestAudio, add_common_args, load_inputs, load_lm_arg, percentile, print_table  # noqa: E402

from asr_ee.decoding.lm import NgramLM  # noqa: E402
from asr_ee.decoding.wer import WordErrors, word_errors  # noqa: E402
from asr_ee.exits.criteria import DEFAULT_THRESHOLDS, ExitCriterion  # noqa: E402
from asr_ee.pretrained import Pretrained  # noqa: E402
from asr_ee.streaming import ChunkRecord, ControllerConfig, Recognizer, StreamingConfig  # noqa: E402
from asr_ee.streaming.controller import LoadReading, Setting  # noqa: E402
from asr_ee.streaming.simulate import run_streams  # noqa: E402

TARGET_BACKLOG_S = 1.0  # issue 20: the maximum backlog with the controller


def _burn(deadline: float) -> None:
    x = 1.0
    while time.time() < deadline:
        for _ in range(10_000):
            x = (x * 1.000001) % 7.0


class LoadSchedule:
    """Starts ``burners`` busy processes ``start_s`` after :meth:`begin` and stops them at ``end_s``.
    Each burner also exits by itself at its deadline, so none outlives the benchmark."""

    def __init__(self, burners: int, start_s: float, end_s: float) -> None:
        self.burners, self.start_s, self.end_s = burners, start_s, end_s
        self._processes: list[multiprocessing.Process] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def begin(self) -> None:
        self._t0 = time.perf_counter()
        self._thread.start()

    def _run(self) -> None:
        if self._stop.wait(self.start_s):
            return
        deadline = time.time() + (self.end_s - self.start_s) + 1.0
        context = multiprocessing.get_context("fork")
        self._processes = [context.Process(target=_burn, args=(deadline,), daemon=True) for _ in range(self.burners)]
        for p in self._processes:
            p.start()
        self._stop.wait(max(0.0, self.end_s - (time.perf_counter() - self._t0)))
        self._terminate()

    def _terminate(self) -> None:
        for p in self._processes:
            if p.is_alive():
                p.terminate()
        for p in self._processes:
            p.join(timeout=5)

    def end(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._terminate()


@dataclass
class LiveRun:
    name: str
    chunks: list[ChunkRecord]  # all streams', ordered by decoding time
    first_stream: list[ChunkRecord]
    wer: float
    wall_s: float
    levels: list[tuple[float, int]]  # the first stream's controller level over time (s since start)
    budget_steps: int


def _signals(audio: list[TestAudio], streams: int, seconds: float) -> list[tuple[torch.Tensor, str]]:
    """Per stream, utterances (rotated per stream) with 0.3 s pauses up to ``seconds``; and the text."""
    pause = torch.zeros(4800)
    out = []
    for s in range(streams):
        pieces, texts, total, k = [], [], 0, s * 7
        while total < seconds * 16000:
            item = audio[k % len(audio)]
            pieces += [item.samples, pause]
            texts.append(item.utterance.reference or "")
            total += item.samples.numel() + pause.numel()
            k += 1
        out.append((torch.cat(pieces)[: int(seconds * 16000)], " ".join(texts)))
    return out


def _full_depth_rtf(pretrained: Pretrained, signals: list[torch.Tensor], base: dict, batch: bool,
                    lm: NgramLM | None) -> float:
    recognizer = Recognizer(pretrained, StreamingConfig(criterion=None, controller=None, **base), cpu_load=lambda: 0.0,
                            lm=lm)
    start = time.perf_counter()
    run_streams(recognizer, signals, batch=batch)
    return (time.perf_counter() - start) / (signals[0].numel() / 16000)


def _calibrate(pretrained: Pretrained, audio: list[TestAudio], base: dict, utilization: float, batch: bool,
               lm: NgramLM | None) -> int:
    probe = [s for s, _ in _signals(audio, 1, 8.0)]
    _full_depth_rtf(pretrained, probe, base, batch, lm)  # warm-up
    streams = max(1, int(utilization / _full_depth_rtf(pretrained, probe, base, batch, lm)))
    for _ in range(2):
        rtf = _full_depth_rtf(pretrained, [s for s, _ in _signals(audio, streams, 8.0)], base, batch, lm)
        print(f"  calibration: {streams} stream(s) at full depth: RTF {rtf:.2f} of one core")
        streams = max(1, round(streams * utilization / rtf))
    return streams


def _log_levels(recognizer: Recognizer, start: list[float]) -> list[tuple[float, int]]:
    """Wrap the controller's decide to log the first stream's level (s since ``start[0]``)."""
    log: list[tuple[float, int]] = []
    controller = recognizer.controller
    if controller is None:
        return log
    decide, first = controller.decide, []

    def logged(state, reading: LoadReading) -> Setting:
        setting = decide(state, reading)
        if not first:
            first.append(id(state))
        if id(state) == first[0]:
            log.append((time.perf_counter() - start[0], state.level))
        return setting

    controller.decide = logged
    return log


def _live_run(name: str, recognizer: Recognizer, signals: list[tuple[torch.Tensor, str]],
              schedule: LoadSchedule, batch: bool) -> LiveRun:
    origin = [time.perf_counter()]
    levels = _log_levels(recognizer, origin)
    schedule.begin()
    start = origin[0] = time.perf_counter()
    try:
        results = run_streams(recognizer, [s for s, _ in signals], realtime=True, batch=batch)
    finally:
        schedule.end()
    errors = WordErrors()
    for result, (_, reference) in zip(results, signals):
        errors = errors + word_errors(reference, result.text)
    chunks = sorted((c for r in results for c in r.chunks), key=lambda c: c.decoded_at_ms)
    budget_steps = 0 if recognizer.controller is None else recognizer.controller.budget_steps
    return LiveRun(name, chunks, results[0].chunks, errors.wer, time.perf_counter() - start, levels, budget_steps)


def _cpu(chunks: list[ChunkRecord]) -> str:
    """Mean CPU load of other processes the controller saw ('-' without a controller)."""
    values = [c.cpu_load for c in chunks]
    return "-" if not values or not any(values) else f"{sum(values) / len(values):.2f}"


def _latency_s(c: ChunkRecord) -> float:
    return (c.decoded_at_ms - c.audio_end_ms) / 1000


def _summary(runs: list[LiveRun], load: tuple[float, float], budget_ms: float) -> None:
    rows = []
    for run in runs:
        during = [c for c in run.chunks if load[0] <= c.decoded_at_ms / 1000 <= load[1]]
        outside = [c for c in run.chunks if not load[0] <= c.decoded_at_ms / 1000 <= load[1]]
        rows.append([run.name, round(max(c.backlog_ms for c in run.chunks) / 1000, 2),
                     round(max((c.backlog_ms for c in during), default=0.0) / 1000, 2),
                     round(percentile([_latency_s(c) for c in run.chunks], 50), 3),
                     round(percentile([_latency_s(c) for c in run.chunks], 95), 3),
                     round(percentile([_latency_s(c) for c in during], 95), 3),
                     round(sum(c.exit_layer for c in run.chunks) / len(run.chunks), 2),
                     min(c.cap for c in run.chunks), _cpu(during), _cpu(outside),
                     round(run.wer, 2), round(run.wall_s, 1)])
    print_table(["run", "max backlog s", "max backlog in load s", "latency p50 s", "latency p95 s",
                 "p95 in load s", "mean exit", "min cap", "cpu in load", "cpu outside", "WER %", "wall s"], rows)
    fixed = rows[0][1]
    print()
    for row in rows[1:]:
        print(f"{row[0]}: max backlog {row[1]} s ({'under' if row[1] < TARGET_BACKLOG_S else 'NOT under'} the "
              f"{TARGET_BACKLOG_S:.0f} s target; latency budget {budget_ms / 1000:.2f} s beyond the chunk), "
              f"WER {row[10]}% against {rows[0][10]}% at full depth")
    print(f"full depth: max backlog {fixed} s "
          f"({'fell behind' if fixed > TARGET_BACKLOG_S else 'kept up: raise --burners or --streams'})")


def _plot(runs: list[LiveRun], load: tuple[float, float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    for run, color in zip(runs, ("tab:red", "tab:blue", "tab:green")):
        t = [c.decoded_at_ms / 1000 for c in run.chunks]
        axes[0].plot(t, [c.backlog_ms / 1000 for c in run.chunks], ".", ms=2, color=color, label=run.name)
        axes[1].plot(t, [_latency_s(c) for c in run.chunks], ".", ms=2, color=color, label=run.name)
        axes[2].plot(t, [c.exit_layer for c in run.chunks], ".", ms=2, color=color, label=f"{run.name}: exit")
        if run.levels:
            axes[2].step([c.decoded_at_ms / 1000 for c in run.first_stream], [c.cap for c in run.first_stream],
                         where="post", color=color, lw=1, label=f"{run.name}: cap (first stream)")
            axes[3].step([t for t, _ in run.levels], [level for _, level in run.levels], where="post", color=color,
                         lw=1, label=f"{run.name}: level (first stream; {run.budget_steps} budget steps, then the cap)")
            axes[3].axhline(run.budget_steps, color=color, lw=0.5, ls="--")
    axes[0].axhline(TARGET_BACKLOG_S, color="k", lw=0.5, ls="--")
    for ax, label in zip(axes, ("backlog (s)", "chunk latency (s)", "exit layer", "controller level")):
        ax.axvspan(*load, color="orange", alpha=0.15, label="CPU load" if ax is axes[0] else None)
        ax.set_ylabel(label)
        ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel("time since start (s)")
    fig.suptitle("Streaming under CPU load: fixed full depth vs load-aware early exits")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--seconds", type=float, default=45.0, help="audio per stream and run")
    parser.add_argument("--streams", default="auto", help="concurrent streams, or 'auto'")
    parser.add_argument("--utilization", type=float, default=0.6, help="full-depth share of a core for 'auto'")
    parser.add_argument("--burners", type=int, default=2 * (os.cpu_count() or 1), help="CPU-burning processes")
    parser.add_argument("--load", type=lambda s: tuple(float(x) for x in s.split(",")), default=(0.25, 0.6),
                        help="load phase as fractions of --seconds (start,end)")
    parser.add_argument("--criterion", default="entropy", choices=sorted(DEFAULT_THRESHOLDS))
    parser.add_argument("--threshold", type=float, default=None,
                        help="default: the criterion's default threshold (asr_ee.exits.criteria.CRITERIA)")
    parser.add_argument("--latency-budget-ms", type=float, default=ControllerConfig.latency_budget_ms,
                        help="excess backlog (beyond the chunk) the controller holds a stream under")
    parser.add_argument("--budget-first", action="store_true",
                        help="also run the controller that moves the criterion's threshold toward cheaper before "
                             "it caps the depth (ControllerConfig.move_budget)")
    parser.add_argument("--batch", action="store_true",
                        help="stack the streams into one infer call (a server) instead of decoding them one by "
                             "one (devices sharing a CPU); batching leaves less of the cost to the exit depth")
    parser.add_argument("--plot", default="streaming_load.png")
    parser.set_defaults(limit=60)
    args = parser.parse_args(argv)
    if args.threshold is None:
        args.threshold = DEFAULT_THRESHOLDS[args.criterion]
    pretrained, audio = load_inputs(args)
    lm = load_lm_arg(args, pretrained)
    base = dict(chunk_frames=args.chunk_frames, left_context_chunks=args.left_context_chunks, endpoint=None,
                decoding="beam" if lm is not None else "greedy")
    if args.streams == "auto":
        streams = _calibrate(pretrained, audio, base, args.utilization, args.batch, lm)
    else:  # warm up as the calibration would, so that the first run does not pay for it
        streams = int(args.streams)
        _full_depth_rtf(pretrained, [s for s, _ in _signals(audio, 1, 8.0)], base, args.batch, lm)
    signals = _signals(audio, streams, args.seconds)
    load = (args.load[0] * args.seconds, args.load[1] * args.seconds)
    print(f"{streams} stream(s) x {args.seconds:.0f} s, {args.burners} burners from {load[0]:.0f} s to {load[1]:.0f} s; "
          f"criterion {args.criterion} {args.threshold:g}")
    criterion = ExitCriterion(args.criterion, args.threshold)
    configs = [("full depth", StreamingConfig(criterion=None, controller=None, **base)),
               ("controlled", StreamingConfig(criterion=criterion, **base,
                                              controller=ControllerConfig(latency_budget_ms=args.latency_budget_ms)))]
    if args.budget_first:
        configs.append(("budget first", StreamingConfig(criterion=criterion, **base, controller=ControllerConfig(
            latency_budget_ms=args.latency_budget_ms, move_budget=True))))
    runs = []
    for name, config in configs:
        recognizer = Recognizer(pretrained, config, lm=lm)
        ladder = f" (budget ladder {recognizer.thresholds})" if recognizer.thresholds else ""
        print(f"  running {name}{ladder} ...", flush=True)
        runs.append(_live_run(name, recognizer, signals, LoadSchedule(args.burners, *load), args.batch))
    _summary(runs, load, args.latency_budget_ms)
    _plot(runs, load, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
