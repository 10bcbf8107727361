"""What ``asr-ee evaluate`` writes: ``results.json``, ``results.md``, ``utterances.jsonl`` and the
``wer_vs_compute.png`` plot.

Every file is written to a temporary name and renamed into place; :class:`OutputDir` checks the
folder before the work and holds it while a run lasts, so two runs into one folder never leave a
mixed set.

The table and the plot are made from the ``results.json`` content alone (``summary``), so they can be
redrawn from a saved file with :func:`write_markdown` and :func:`plot_wer_vs_compute`.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from asr_ee.evaluation.results import EvaluationResult
from asr_ee.exits.criteria import CRITERIA
from asr_ee.exits.selection import GRANULARITIES
from asr_ee.models.flops import ENCODER_FRAMES_PER_SECOND

__all__ = ["OutputDir", "write_outputs", "markdown_report", "write_markdown", "plot_wer_vs_compute", "OUTPUT_FILES",
           "read_utterances"]

OUTPUT_FILES = {"json": "results.json", "markdown": "results.md", "utterances": "utterances.jsonl",
                "plot": "wer_vs_compute.png"}
FRAME_MS = round(1000 / ENCODER_FRAMES_PER_SECOND)  # one encoder frame
_CRITERIA_PLOTTED = tuple(name for name, spec in CRITERIA.items() if spec.plotted)  # fixed: per-exit points
_LABELS = {**{name: spec.label for name, spec in CRITERIA.items()}, "oracle": "oracle (bound)"}
# one colour per plotted criterion (purple is the oracle's): a new criterion gets the next one
_PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:brown", "tab:cyan", "tab:olive", "tab:pink")
_COLORS = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(_CRITERIA_PLOTTED)}
_HOLD_STYLES = ("^:", "v-.", "d--")  # a criterion with a hold: its colour, another line


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _threshold(row: dict[str, Any], exit_layers: list[int]) -> str:
    if row["threshold"] is None:
        return "-"
    if row["criterion"] == "fixed":
        return f"{row['threshold']:g} (layer {exit_layers[int(row['threshold'])]})"
    hold = row.get("hold_chunks") or 0
    return f"{row['threshold']:g}" + (f", hold {hold}" if hold else "")


def _header(summary: dict[str, Any]) -> list[str]:
    s, timing = summary["settings"], summary["timing"]
    attention = "full context" if s["attention"] == "full" else (
        f"chunk mask, {s['chunk_frames']} frames, left context "
        f"{'unlimited' if s['left_context_chunks'] is None else s['left_context_chunks']} chunks")
    lines = ["# Early-exit evaluation", ""]
    if "model" in summary:
        lines.append(f"- model: `{summary['model']}`")
    if "inputs" in summary:
        lines.append(f"- inputs: {', '.join(f'`{i}`' for i in summary['inputs'])}")
    lines += [f"- utterances: {summary['num_evaluated']} evaluated ({summary['num_with_reference']} with a reference), "
              f"{summary['num_failed']} failed; {timing['audio_seconds'] / 60:.1f} min of audio",
              f"- attention: {attention}; per-chunk decisions on {s['chunk_frames']} encoder frames "
              f"({s['chunk_frames'] * FRAME_MS} ms); FLOPs counted with {s['context_frames']:.1f} context frames",
              "- WER in %; compute = encoder FLOPs as a fraction of the full depth (every earlier exit head "
              "counted), averaged over frames; RTF to exit = measured encoder seconds per audio second",
              ""]
    return lines


def _per_exit_table(summary: dict[str, Any]) -> list[str]:
    lines = ["## Per exit", "", "| decoding | exit layer | WER | ins | del | sub | words | compute | "
             "GFLOPs / audio s | RTF to exit |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary["per_exit"]:
        lines.append(f"| {r['decoding']} | {r['exit_layer']} | {_num(r['wer'])} | {r['ins']} | {r['del']} | {r['sub']} | "
                     f"{r['num_words']} | {r['compute_fraction']:.3f} | {r['gflops_per_audio_second']:.3f} | "
                     f"{_num(r['real_time_factor'], 4)} |")
    return lines + [""]


def _change(row: dict[str, Any]) -> str:
    """``+4.4% [+1.2, +7.9]`` (files written before the interval existed: ``-``)."""
    change, ci = row.get("wer_change"), row.get("wer_change_ci95")
    if change is None or ci is None:
        return "-"
    return f"{change:+.1f}% [{ci[0]:+.1f}, {ci[1]:+.1f}]"


def _policy_tables(summary: dict[str, Any]) -> list[str]:
    lines = []
    for decoding in summary["settings"]["decodings"]:
        for granularity in GRANULARITIES:
            rows = [r for r in summary["policies"] if r["decoding"] == decoding and r["granularity"] == granularity]
            if not rows:
                continue
            lines += [f"## Exit policies: {decoding} decoding, exit chosen per {granularity}", "",
                      "| criterion | threshold | WER | vs last exit (95% CI) | avg exit layer | compute | Pareto |",
                      "|---|---|---:|---:|---:|---:|:---:|"]
            for r in rows:
                lines.append(f"| {_LABELS[r['criterion']]} | {_threshold(r, summary['exit_layers'])} | "
                             f"{_num(r['wer'])} | {_change(r)} | {_num(r['avg_exit_layer'])} | "
                             f"{_num(r['compute_fraction'], 3)} | {'*' if r['pareto'] else ''} |")
            lines.append("")
    if lines:
        lines += ["Pareto `*`: no other policy of the same table has both lower-or-equal WER and "
                  "lower-or-equal compute (the oracle, which needs the last exit, is a bound and is left out).",
                  "vs last exit: relative WER change against the last exit on the same utterances, with a 95% "
                  "paired bootstrap interval over utterances (1,000 resamples): a change whose interval holds "
                  "0 is one this split cannot tell from noise.", ""]
    return lines


def markdown_report(summary: dict[str, Any]) -> str:
    lines = _header(summary) + _per_exit_table(summary) + _policy_tables(summary)
    if summary["failed"]:
        lines += [f"## Failed ({len(summary['failed'])})", "", "| id | source | error |", "|---|---|---|"]
        lines += [f"| {f['id']} | {f['source']} | {f['error'].replace('|', '/')} |" for f in summary["failed"]]
        lines.append("")
    return "\n".join(lines)


def write_markdown(summary: dict[str, Any], path: str | Path) -> None:
    _write_atomic(Path(path), lambda tmp: tmp.write_text(markdown_report(summary)))


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class OutputDir:
    """The folder a run writes into, checked before the work and held while the run lasts.

    Entering creates the folder if needed, checks that it is a writable folder and takes an
    exclusive lock on it (``flock`` of the folder itself: no lock file is left behind); a second
    run into the same folder is refused at once. Raises ``OSError`` with a one-line message.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> "OutputDir":
        if self._fd is not None:  # already held (entered once to check early)
            return self
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"output folder {self.path} is a file")
        self.path.mkdir(parents=True, exist_ok=True)
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise PermissionError(f"output folder {self.path} is not writable")
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BlockingIOError(f"another run is writing into {self.path}; wait for it or choose "
                                  "another --output-dir") from None
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def _threshold_labels(points: list[tuple[float, float, float]]) -> dict[tuple[float, float], str]:
    """One label per distinct point: thresholds that land on the same point share it ("0.1-0.3")."""
    groups: dict[tuple[float, float], list[float]] = {}
    for x, y, threshold in points:
        groups.setdefault((x, y), []).append(threshold)
    return {xy: f"{ts[0]:g}" if len(ts) == 1 else f"{min(ts):g}-{max(ts):g}" for xy, ts in groups.items()}


def _panel(ax: Any, summary: dict[str, Any], decoding: str, granularity: str) -> None:
    """One (decoding, granularity) panel: per-exit points, one line per criterion, the oracle."""
    exits = [r for r in summary["per_exit"] if r["decoding"] == decoding and r["wer"] is not None]
    ax.plot([r["compute_fraction"] for r in exits], [r["wer"] for r in exits], "s--", color="black",
            label="per exit (= fixed exit)", zorder=3)
    for r in exits:
        ax.annotate(f"L{r['exit_layer']}", (r["compute_fraction"], r["wer"]), textcoords="offset points",
                    xytext=(4, 6), fontsize=9, fontweight="bold")
    rows = [r for r in summary["policies"] if r["decoding"] == decoding and r["granularity"] == granularity
            and r["wer"] is not None and r["compute_fraction"] is not None]
    placed: dict[tuple[float, float], int] = {}  # labels already at a point: stack the next one below
    holds = sorted({r.get("hold_chunks") or 0 for r in rows})
    for (kind, color), hold in ((kc, h) for kc in _COLORS.items() for h in holds):
        points = sorted((r["compute_fraction"], r["wer"], r["threshold"]) for r in rows
                        if r["criterion"] == kind and (r.get("hold_chunks") or 0) == hold)
        if not points:
            continue
        style, label = ("o-", _LABELS[kind]) if not hold else (_HOLD_STYLES[(hold - 1) % len(_HOLD_STYLES)],
                                                                f"{_LABELS[kind]}, hold {hold}")
        ax.plot([p[0] for p in points], [p[1] for p in points], style, color=color, alpha=0.8, label=label)
        for (x, y), label in _threshold_labels(points).items():
            below = placed.get((x, y), 0)
            placed[(x, y)] = below + 1
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, -10 - 8 * below), fontsize=7,
                        color=color)
    for r in rows:
        if r["criterion"] == "oracle":
            ax.plot(r["compute_fraction"], r["wer"], "*", color="purple", markersize=14, label=_LABELS["oracle"])
    if not exits:
        ax.text(0.5, 0.5, "no references: no WER", transform=ax.transAxes, ha="center")
    chunk = summary["settings"]["chunk_frames"]
    where = "utterance" if granularity == "utterance" else f"chunk of {chunk * FRAME_MS} ms"
    ax.set_title(f"{decoding} decoding, exit chosen per {where}")
    ax.set_xlabel("encoder compute (fraction of full depth)")
    ax.set_ylabel("WER (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def plot_wer_vs_compute(summary: dict[str, Any], path: str | Path) -> None:
    """WER against compute, one panel per decoding (rows) and granularity (columns); threshold values
    are printed next to each criterion's points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    decodings = summary["settings"]["decodings"]
    fig = Figure(figsize=(7 * len(GRANULARITIES), 5 * len(decodings)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(decodings), len(GRANULARITIES), squeeze=False)
    for i, decoding in enumerate(decodings):
        for j, granularity in enumerate(GRANULARITIES):
            _panel(axes[i][j], summary, decoding, granularity)
    what = "WER against encoder compute (small numbers: each criterion's thresholds)"
    if "model" in summary and "inputs" in summary:
        what = f"{Path(summary['model']).name} on {', '.join(Path(i).name for i in summary['inputs'])}: {what}"
    fig.suptitle(what)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(str(path), dpi=110, format="png")


def read_utterances(eval_dir: str | Path) -> list[dict[str, Any]]:
    """The per-utterance records of a written evaluation: ``utterances.jsonl``, or
    ``utterances.jsonl.gz`` where it was compressed (as in exp/small/eval/)."""
    plain = Path(eval_dir) / OUTPUT_FILES["utterances"]
    path = plain if plain.is_file() else plain.with_name(plain.name + ".gz")
    with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path)) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_outputs(result: EvaluationResult, output_dir: str | Path, *, plot: bool = True) -> dict[str, Path]:
    """Write every output file into ``output_dir``; returns their paths by kind."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: output_dir / name for kind, name in OUTPUT_FILES.items()}
    exit_layers = result.summary["exit_layers"]

    def utterances(tmp: Path) -> None:
        with open(tmp, "w") as f:
            for utt in result.utterances:
                f.write(json.dumps(utt.to_dict(exit_layers)) + "\n")

    _write_atomic(paths["utterances"], utterances)
    write_markdown(result.summary, paths["markdown"])
    if plot:
        _write_atomic(paths["plot"], lambda tmp: plot_wer_vs_compute(result.summary, tmp))
    else:
        paths.pop("plot").unlink(missing_ok=True)  # an earlier run's plot would not match these results
    _write_atomic(paths["json"], lambda tmp: tmp.write_text(json.dumps(result.summary, indent=2) + "\n"))
    return paths
