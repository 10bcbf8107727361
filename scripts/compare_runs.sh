#!/usr/bin/env bash
# Compare training runs on dev before choosing one to ship: average each run's last K checkpoints,
# evaluate every exit (full context and under the streaming chunk mask) on dev and on held-out
# voices, then print one table (last-exit WER, and the compute that per-chunk exits need for
# <= 5% relative WER). Run it on a quiet machine.
# Usage: bash scripts/compare_runs.sh OUT_DIR DATA_DIR K RUN [RUN ...]
#   RUN: a run directory (its last K checkpoints are averaged) or an exported model file (used as is)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: compare_runs.sh OUT_DIR DATA_DIR K RUN_DIR...}
data=${2:?usage: compare_runs.sh OUT_DIR DATA_DIR K RUN_DIR...}
k=${3:?usage: compare_runs.sh OUT_DIR DATA_DIR K RUN_DIR...}
shift 3
for run in "$@"; do
  name=$(basename "$run" .pt)
  dir="$out/$name"
  mkdir -p "$dir"
  if [ -f "$run" ]; then
    cp "$run" "$dir/model.pt"
  else
    .venv/bin/asr-ee average --exp-dir "$run" --last "$k" --output "$dir/model.pt" --export
  fi
  ev() { .venv/bin/asr-ee evaluate "$1" --model "$dir/model.pt" --decoding greedy --quiet --output-dir "$2" "${@:3}"; }
  ev "$data/cuts_dev.jsonl.gz" "$dir/dev"
  ev "$data/cuts_dev.jsonl.gz" "$dir/dev_chunk8" --attention chunk --chunk-frames 8 --left-context-chunks 4
  ev "$data/cuts_test_heldout_voices.jsonl.gz" "$dir/heldout"
done
.venv/bin/python scripts/summarize_evals.py "$out"
