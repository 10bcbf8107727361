"""The learned gate against the other criteria and the fixed exits, from an ``asr-ee evaluate`` run:
per-chunk rows of one decoding, WER relative to the last exit (with its 95% paired bootstrap interval
where the evaluation wrote one), compute, and issue 20's target (the gate at <= 70% compute for <= +2%
relative WER).

    python benchmarks/gate_table.py OUT/results.json [--decoding lm] [--max-compute 0.70 --max-relative 2.0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(summary: dict, decoding: str) -> tuple[float, list[dict]]:
    """The last exit's WER and the per-chunk policy rows (fixed exits as per-exit rows) of ``decoding``."""
    per_exit = [r for r in summary["per_exit"] if r["decoding"] == decoding]
    full = per_exit[-1]["wer"]
    fixed_ci = {r["threshold"]: r.get("wer_change_ci95") for r in summary["policies"]
                if r["decoding"] == decoding and r["criterion"] == "fixed" and r["granularity"] == "chunk"}
    out = [{"criterion": "fixed", "threshold": r["exit_layer"], "wer": r["wer"], "wer_change_ci95": fixed_ci.get(k),
            "compute_fraction": r["compute_fraction"], "avg_exit_layer": r["exit_layer"]}
           for k, r in enumerate(per_exit)]
    out += [r for r in summary["policies"] if r["decoding"] == decoding and r["granularity"] == "chunk"
            and r["criterion"] != "fixed"]
    for r in out:
        r["relative"] = 100.0 * (r["wer"] - full) / full if full else None
    return full, sorted(out, key=lambda r: (r["criterion"], -r["compute_fraction"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path)
    p.add_argument("--decoding", default="lm")
    p.add_argument("--max-compute", type=float, default=0.70)
    p.add_argument("--max-relative", type=float, default=2.0)
    args = p.parse_args(argv)
    full, table = rows(json.loads(args.results.read_text()), args.decoding)
    print(f"{args.results} ({args.decoding}): last exit WER {full:.2f}%")
    print("| criterion | threshold | WER | relative | 95% CI | avg exit layer | compute |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    for r in table:
        threshold = "-" if r["threshold"] is None else f"{r['threshold']:g}" + (
            f", hold {r['hold_chunks']}" if r.get("hold_chunks") else "")
        ci = r.get("wer_change_ci95")
        interval = "-" if ci is None else f"[{ci[0]:+.1f}, {ci[1]:+.1f}]"
        print(f"| {r['criterion']} | {threshold} | {r['wer']:.2f} | {r['relative']:+.1f}% | {interval} | "
              f"{r['avg_exit_layer']:.2f} | {r['compute_fraction']:.3f} |")
    gate = [r for r in table if r["criterion"] == "gate"]
    met = [r for r in gate if r["compute_fraction"] <= args.max_compute and r["relative"] <= args.max_relative]
    print(f"target (gate <= {args.max_compute:.0%} compute at <= +{args.max_relative:g}% relative WER): "
          + ("met by " + ", ".join(f"gate@{r['threshold']:g}" + (f"+hold{r['hold_chunks']}" if r.get("hold_chunks")
                                                                  else "") for r in met) if met else "not met"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
