"""Summary of `scripts/evaluate_voice_groups.sh` for one or more model folders: WER per voice group
(greedy and beam + LM at the last exit, full context and streamed under the chunk mask), the
shipped criterion per chunk (the learned gate where `eval/gate_default/` holds its evaluations, else entropy
0.01; streamed, beam + LM: WER, mean exit layer, compute) against
the fixed exits, and the alsa clips' transcripts with their word errors.
Usage: python scripts/voice_groups.py MODEL_DIR [MODEL_DIR ...]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from asr_ee.decoding.wer import word_errors
from asr_ee.exits.criteria import DEFAULT_THRESHOLDS

GROUPS = {"test": "training voices (test)", "test_heldout_voices": "held-out voices",
          "natural": "unseen natural voice (Piper joe)",
          "kokoro_heldout": "held-out Kokoro voice (jf_gongitsune)",
          "wide_kokoro": "held-out Kokoro voice, unseen words", "wide_natural": "Piper joe, unseen words",
          "hibari_heldout": "Hibari, the natural split's sentences (a training voice since the sixth stage)"}


def _results(model_dir: Path, name: str) -> dict | None:
    path = model_dir / "eval" / name / "results.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _last(results: dict, decoding: str) -> float:
    return [e for e in results["per_exit"] if e["decoding"] == decoding][-1]["wer"]


def _policy(results: dict | None, kind: str, threshold: float | None = None, decoding: str = "lm") -> dict | None:
    """The per-chunk row of criterion ``kind`` without a hold (at ``threshold``, when given) in ``results``."""
    if results is None:
        return None
    return next((p for p in results["policies"] if p["criterion"] == kind and p["granularity"] == "chunk"
                 and p["decoding"] == decoding and not p.get("hold_chunks", 0)
                 and (threshold is None or abs(p["threshold"] - threshold) < 1e-9)), None)


def wer_table(model_dir: Path) -> str:
    """Per voice group; the criterion column is the learned gate (``eval/gate_default/<split>/``, the
    shipped default) where the model has those evaluations, else entropy 0.01 (the default before the gate)."""
    gated = (model_dir / "eval" / "gate_default").is_dir()
    criterion = "shipped gate" if gated else "entropy 0.01"
    rows = [f"### {model_dir}", "",
            "| voice group | utterances | greedy, last exit | + LM, last exit | streamed greedy, last | streamed + LM, last "
            f"| streamed + LM, {criterion} per chunk: WER / mean exit / compute | streamed + LM per fixed exit 2..12 |",
            "|---|---:|---:|---:|---:|---:|---|---|"]
    for split, label in GROUPS.items():
        full, chunk = _results(model_dir, split), _results(model_dir, f"{split}_chunk8")
        if full is None or chunk is None:
            continue
        policy = (_policy(_results(model_dir, f"gate_default/{split}"), "gate") if gated  # one threshold: the shipped one
                  else _policy(chunk, "entropy", DEFAULT_THRESHOLDS["entropy"]))
        crit = (f"{policy['wer']:.1f} / {policy['avg_exit_layer']:.1f} / {policy['compute_fraction']:.2f}"
                if policy else "-")
        fixed = "/".join(f"{e['wer']:.1f}" for e in chunk["per_exit"] if e["decoding"] == "lm")
        rows.append(f"| {label} | {full['num_evaluated']} | {_last(full, 'greedy'):.1f} | {_last(full, 'lm'):.1f} "
                    f"| {_last(chunk, 'greedy'):.1f} | {_last(chunk, 'lm'):.1f} | {crit} | {fixed} |")
    return "\n".join(rows)


def alsa_table(model_dir: Path) -> str:
    path = model_dir / "eval" / "alsa.tsv"
    if not path.is_file():
        return ""
    rows, errors, words, clips = ["| clip | heard | word errors |", "|---|---|---:|"], 0, 0, 0
    wrong = inserted = 0
    for line in path.read_text().splitlines():
        clip, _, text = line.partition("\t")
        e = word_errors(clip.replace("_", " "), text)
        errors, words, clips = errors + e.errors, words + e.num_words, clips + 1
        wrong, inserted = wrong + e.subs + e.dels, inserted + e.ins
        rows.append(f"| {clip} | {text} | {e.errors} |")
    rows.append(f"| **all {clips}** | | **{errors}: {wrong} of {words} words wrong, {inserted} inserted** |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for model_dir in map(Path, argv):
        print(wer_table(model_dir), "", alsa_table(model_dir), "", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
