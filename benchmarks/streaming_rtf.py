"""Real-time factor, per-chunk latency, encoder compute and WER of the streaming recognizer on one
thread: full depth against dynamic exits (a threshold sweep of one criterion), and the two
skipped-layer answers (copy, recompute) against each other.

    python benchmarks/streaming_rtf.py [--model exp/small/model.pt] [--cuts DATA/cuts_test.jsonl.gz]
        [--limit 100] [--criterion entropy] [--thresholds 0.05,0.1,0.2] [--hold-chunks 0,2] [--per-exit]
        [--json-out F] [--plot F.png]

Target (issue 5): dynamic exits with <= 60 % of the full-depth encoder compute and <= 5 % relative
WER increase over the last exit. Decoding runs in fast mode (audio handed over in 100 ms pieces as
soon as the recognizer is idle), without the load controller (its cap would depend on this
machine's load) and without endpoints. Columns:

* compute: analytic encoder FLOPs per chunk relative to full depth (catch-up blocks of
  ``recompute`` and cache fills of ``copy`` included), averaged over frames;
* time: measured encoder + decoding time relative to the full-depth run;
* RTF: that time over the audio duration; RTF wall adds feature extraction and the driver;
* p50/p95/max: per-chunk compute latency in ms;
* 95% CI: of the relative WER change against full depth, a paired bootstrap over utterances.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from streaming_common import TestAudio, add_common_args, load_inputs, load_lm_arg, percentile, print_table  # noqa: E402

from asr_ee.decoding.lm import NgramLM  # noqa: E402
from asr_ee.decoding.wer import WordErrors, word_errors  # noqa: E402
from asr_ee.evaluation.summary import relative_change_ci  # noqa: E402
from asr_ee.exits.criteria import DEFAULT_SWEEPS, ExitCriterion  # noqa: E402
from asr_ee.models import SkipPolicy  # noqa: E402
from asr_ee.pretrained import Pretrained  # noqa: E402
from asr_ee.streaming import Recognizer, StreamingConfig  # noqa: E402
from asr_ee.streaming.simulate import run_stream  # noqa: E402

TARGET_COMPUTE, TARGET_REL_WER = 0.60, 0.05


@dataclass
class RunSummary:
    name: str
    policy: str
    wer: float
    errors: int
    words: int
    compute: float
    compute_s: float
    wall_s: float
    audio_s: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    mean_exit_layer: float
    exit_share: dict[int, float] = field(default_factory=dict)
    rel_wer: float = 0.0
    rel_wer_ci95: tuple[float, float] | None = None  # paired bootstrap over utterances, against full depth (%)
    time_ratio: float = 1.0
    utterance_errors: list[int] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        return self.compute_s / self.audio_s

    @property
    def meets_target(self) -> bool:
        return self.compute <= TARGET_COMPUTE and self.rel_wer <= TARGET_REL_WER


def run_config(pretrained: Pretrained, audio: list[TestAudio], config: StreamingConfig, name: str,
               lm: NgramLM | None = None) -> RunSummary:
    recognizer = Recognizer(pretrained, config, cpu_load=lambda: 0.0, lm=lm)
    errors, chunks, wall, per_utterance = WordErrors(), [], 0.0, []
    for item in audio:
        start = time.perf_counter()
        result = run_stream(recognizer, item.samples, reset_at_endpoints=False)
        wall += time.perf_counter() - start
        utterance = word_errors(item.utterance.reference or "", result.text)
        errors, chunks = errors + utterance, chunks + result.chunks
        per_utterance.append(utterance.errors)
    frames = sum(c.frames for c in chunks) or 1
    latencies = [c.compute_ms for c in chunks]
    layers = sorted({c.exit_layer for c in chunks})
    return RunSummary(
        name=name, policy=config.skip_policy.value if config.criterion is not None else "-",
        wer=errors.wer, errors=errors.errors, words=errors.num_words,
        compute=sum(c.compute_fraction * c.frames for c in chunks) / frames,
        compute_s=sum(latencies) / 1000, wall_s=wall, audio_s=sum(a.seconds for a in audio),
        p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95), max_ms=max(latencies, default=0.0),
        mean_exit_layer=sum(c.exit_layer * c.frames for c in chunks) / frames,
        exit_share={layer: sum(c.frames for c in chunks if c.exit_layer == layer) / frames for layer in layers},
        utterance_errors=per_utterance)


def _configs(args: argparse.Namespace, num_exits: int) -> list[tuple[str, StreamingConfig]]:
    base = dict(chunk_frames=args.chunk_frames, left_context_chunks=args.left_context_chunks, controller=None,
                endpoint=None, decoding=args.decoding, beam=args.beam)
    configs = [("full depth", StreamingConfig(criterion=None, **base))]
    if args.per_exit:
        configs += [(f"fixed exit {k}", StreamingConfig(criterion=ExitCriterion("fixed", k),
                                                       skip_policy=SkipPolicy.RECOMPUTE, **base))
                    for k in range(num_exits - 1)]
    for max_layer in args.max_exit_layers:
        suffix = "" if max_layer is None else f" <=L{max_layer}"
        for threshold in args.thresholds:
            for hold in args.hold_chunks:
                for policy in args.policies:
                    criterion = ExitCriterion(args.criterion, threshold)
                    configs.append((str(criterion) + (f"+hold{hold}" if hold else "") + suffix, StreamingConfig(
                        criterion=criterion, skip_policy=policy, max_exit_layer=max_layer, hold_chunks=hold, **base)))
    return configs


def _print_results(runs: list[RunSummary]) -> None:
    print("\nFull depth vs dynamic exits (fast mode, one thread)")
    print_table(["config", "policy", "WER %", "rel dWER %", "95% CI", "compute %", "time %", "RTF", "RTF wall",
                 "p50 ms", "p95 ms", "max ms", "mean exit", "target"],
                [[r.name, r.policy, round(r.wer, 2), round(100 * r.rel_wer, 1),
                  "-" if r.rel_wer_ci95 is None else f"[{r.rel_wer_ci95[0]:+.1f}, {r.rel_wer_ci95[1]:+.1f}]",
                  round(100 * r.compute, 1),
                  round(100 * r.time_ratio, 1), round(r.rtf, 4), round(r.wall_s / r.audio_s, 4), round(r.p50_ms, 2),
                  round(r.p95_ms, 2), round(r.max_ms, 1), round(r.mean_exit_layer, 2),
                  "yes" if r.meets_target else "no"] for r in runs])
    pairs = {}
    for r in runs:
        if r.policy in ("copy", "recompute") and not r.name.startswith("fixed"):
            pairs.setdefault(r.name, {})[r.policy] = r
    print("\nSkipped layers: copy vs recompute")
    print_table(["criterion", "WER copy", "WER recompute", "compute copy %", "compute recompute %",
                 "time copy %", "time recompute %", "p95 copy ms", "p95 recompute ms", "max copy ms",
                 "max recompute ms"],
                [[name, round(p["copy"].wer, 2), round(p["recompute"].wer, 2), round(100 * p["copy"].compute, 1),
                  round(100 * p["recompute"].compute, 1), round(100 * p["copy"].time_ratio, 1),
                  round(100 * p["recompute"].time_ratio, 1), round(p["copy"].p95_ms, 2),
                  round(p["recompute"].p95_ms, 2), round(p["copy"].max_ms, 1), round(p["recompute"].max_ms, 1)]
                 for name, p in pairs.items() if len(p) == 2])
    meeting = [r for r in runs if r.meets_target and r.name != "full depth" and not r.name.startswith("fixed")]
    if meeting:
        best = min(meeting, key=lambda r: r.compute)
        print(f"\nTarget met by {len(meeting)} dynamic configuration(s); cheapest: {best.name} ({best.policy}): "
              f"{100 * best.compute:.1f} % compute, WER {best.wer:.2f} % vs {runs[0].wer:.2f} % full depth "
              f"({100 * best.rel_wer:+.1f} % relative)")
    else:
        print(f"\nNo dynamic configuration meets the target (<= {100 * TARGET_COMPUTE:.0f} % compute and "
              f"<= {100 * TARGET_REL_WER:.0f} % relative WER increase)")


def plot_runs(runs: list[RunSummary], path: str, title: str) -> None:
    """WER against encoder compute: the fixed exits as one curve, each skip policy's threshold
    sweep as another, the target box shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = runs[0]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.fill_between([0, 100 * TARGET_COMPUTE], 0, full.wer * (1 + TARGET_REL_WER), color="tab:green", alpha=0.12,
                    label=f"target: <= {100 * TARGET_COMPUTE:.0f}% compute, <= {100 * TARGET_REL_WER:.0f}% rel. WER")
    fixed = [r for r in runs if r.name.startswith("fixed")] + [full]
    ax.plot([100 * r.compute for r in fixed], [r.wer for r in fixed], "s-", color="black", label="fixed exit")
    for policy, color in (("copy", "tab:blue"), ("recompute", "tab:orange")):
        sweep = sorted((r for r in runs if r.policy == policy and not r.name.startswith("fixed")),
                       key=lambda r: r.compute)
        if not sweep:
            continue
        ax.plot([100 * r.compute for r in sweep], [r.wer for r in sweep], "o-", color=color,
                label=f"{sweep[0].name.split('@')[0]} threshold sweep, {policy}")
        for r in sweep:
            ax.annotate(r.name.split("@")[1], (100 * r.compute, r.wer), fontsize=7, xytext=(3, 3),
                        textcoords="offset points", color=color)
    ax.set_xlim(0, 105)
    ax.set_ylim(0, min(max(r.wer for r in runs) * 1.05, 3 * full.wer))
    ax.set_xlabel("encoder compute, % of full depth")
    ax.set_ylabel("WER %")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--criterion", default="entropy", choices=sorted(DEFAULT_SWEEPS))
    parser.add_argument("--thresholds", type=lambda s: [float(x) for x in s.split(",")],
                        help="comma-separated thresholds (default: the criterion's standard sweep)")
    parser.add_argument("--decoding", default="greedy", choices=["greedy", "beam"])
    parser.add_argument("--beam", type=int, default=8)
    parser.add_argument("--policies", type=lambda s: [SkipPolicy(x) for x in s.split(",")],
                        default=[SkipPolicy.COPY, SkipPolicy.RECOMPUTE],
                        help="skip policies for the dynamic runs (default copy,recompute)")
    parser.add_argument("--max-exit-layers", default=[None],
                        type=lambda s: [None if x == "last" else int(x) for x in s.split(",")],
                        help="comma-separated deepest exits for the dynamic runs, each a layer number or "
                             "'last' (default: last); e.g. last,10")
    parser.add_argument("--hold-chunks", default=[0], type=lambda s: [int(x) for x in s.split(",")],
                        help="comma-separated holds for the dynamic runs (a chunk at least as deep as the criterion "
                             "chose on that many chunks before it; default 0)")
    parser.add_argument("--per-exit", action="store_true",
                        help="also every exit at a fixed depth (recompute: nothing spent above the exit)")
    parser.add_argument("--json-out", help="write the figures as JSON")
    parser.add_argument("--plot", help="write WER against compute (PNG)")
    parser.set_defaults(limit=100)
    args = parser.parse_args(argv)
    args.thresholds = args.thresholds or DEFAULT_SWEEPS[args.criterion]
    pretrained, audio = load_inputs(args)
    lm = load_lm_arg(args, pretrained)
    if lm is not None:
        args.decoding = "beam"
    run_config(pretrained, audio[:2], StreamingConfig(criterion=None, controller=None), "warm-up")
    runs = []
    for name, config in _configs(args, pretrained.encoder.num_exits):
        runs.append(run_config(pretrained, audio, config, name, lm))
        print(f"  {name:>24s} {runs[-1].policy:>9s}: WER {runs[-1].wer:6.2f} %  compute "
              f"{100 * runs[-1].compute:5.1f} %  RTF {runs[-1].rtf:.4f}", flush=True)
    full = runs[0]
    for r in runs:
        r.rel_wer = (r.wer - full.wer) / full.wer if full.wer > 0 else (0.0 if r.wer == 0 else float("inf"))
        r.time_ratio = r.compute_s / full.compute_s if full.compute_s > 0 else float("nan")
        change = relative_change_ci(r.utterance_errors, full.utterance_errors)
        r.rel_wer_ci95 = None if change is None else (round(change[1], 2), round(change[2], 2))
    _print_results(runs)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([asdict(r) | {"rtf": r.rtf} for r in runs], indent=2))
    if args.plot:
        plot_runs(runs, args.plot, f"streaming, {len(audio)} utterances of {Path(args.cuts or 'test').name}, "
                                   f"{args.chunk_frames * 40} ms chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
