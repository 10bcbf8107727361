"""One table from the folders `scripts/compare_runs.sh` writes: per run, WER per exit on dev (full
context; greedy, and beam + LM where evaluated), last-exit WER on held-out voices (all, and per engine), and under the streaming chunk mask the last exit's WER,
the per-chunk oracle's compute and the cheapest per-chunk policy within 5% relative WER of the last
exit; then, where the runs were streamed, each streaming configuration's WER and compute. Usage: python scripts/summarize_evals.py OUT_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from asr_ee.evaluation.by_voice import wer_by


def _load(path: Path) -> dict:
    return json.loads((path / "results.json").read_text())


def _last(results: dict) -> float:
    return [e for e in results["per_exit"] if e["decoding"] == "greedy"][-1]["wer"]


def summarize(out: Path) -> str:
    rows = ["| run | dev WER per exit | dev WER per exit, beam + LM | held-out last | held-out per engine "
            "| dev chunk8 last | chunk oracle compute | cheapest chunk policy <= 5% rel (WER, compute) |",
            "|---|---|---|---:|---|---:|---:|---|"]
    complete = [p for p in sorted(out.iterdir())
                if all((p / split / "results.json").is_file() for split in ("dev", "dev_chunk8", "heldout"))]
    for run in complete:
        dev, chunk, held = _load(run / "dev"), _load(run / "dev_chunk8"), _load(run / "heldout")
        per_exit = "/".join(f"{e['wer']:.1f}" for e in dev["per_exit"] if e["decoding"] == "greedy")
        per_exit_lm = "/".join(f"{e['wer']:.1f}" for e in dev["per_exit"] if e["decoding"] == "lm") or "-"
        limit = 1.05 * _last(chunk)
        policies = [p for p in chunk["policies"] if p["granularity"] == "chunk" and p["decoding"] == "greedy"]
        oracle = next(p for p in policies if p["criterion"] == "oracle")
        ok = [p for p in policies if p["criterion"] != "oracle" and p["wer"] <= limit]
        best = min(ok, key=lambda p: p["compute_fraction"]) if ok else None
        best_text = "none"
        if best:
            rule = (f"fixed exit layer {chunk['exit_layers'][int(best['threshold'])]}" if best["criterion"] == "fixed"
                    else f"{best['criterion']} {best['threshold']}")
            best_text = f"{rule}: {best['wer']:.1f}, {best['compute_fraction']:.2f}"
        engines = wer_by(run / "heldout", Path(held["inputs"][0]))
        per_engine = ", ".join(f"{name} {wer:.1f}" for name, (_, wer) in engines.items())
        rows.append(f"| {run.name} | {per_exit} | {per_exit_lm} | {_last(held):.1f} | {per_engine} | {_last(chunk):.1f} | "
                    f"{oracle['compute_fraction']:.2f} | {best_text} |")
    return "\n".join(rows + stream_table(out))


def stream_table(out: Path) -> list[str]:
    """Per run, the streamed dev WER / compute of each configuration ``benchmarks/streaming_rtf.py`` ran."""
    runs = {p.name: json.loads((p / "stream_dev.json").read_text())
            for p in sorted(out.iterdir()) if (p / "stream_dev.json").is_file()}
    if not runs:
        return []
    configs = list(dict.fromkeys((r["name"], r["policy"]) for results in runs.values() for r in results))
    by_run = {run: {(r["name"], r["policy"]): r for r in results} for run, results in runs.items()}
    rows = ["", "Streamed dev utterances: WER % / encoder compute % of full depth", "",
            "| configuration | " + " | ".join(runs) + " |", "|---|" + "---:|" * len(runs)]
    for config in configs:
        name, policy = config
        cells = [f"{got[config]['wer']:.1f} / {100 * got[config]['compute']:.0f}" if config in got else "-"
                 for got in by_run.values()]
        rows.append(f"| {name if policy == '-' else f'{name} ({policy})'} | " + " | ".join(cells) + " |")
    return rows


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1])))
