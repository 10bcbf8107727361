#!/usr/bin/env bash
# Compare training runs on dev before choosing one to ship: average each run's last K checkpoints,
# evaluate every exit (full context and under the streaming chunk mask) on dev and on held-out
# voices, and stream the first STREAM_LIMIT (100) dev utterances through the recognizer (fixed exits,
# entropy exits at STREAM_THRESHOLDS (0.02,0.05) with copy and with recompute); then print the
# tables (last-exit WER, the compute that per-chunk exits need for <= 5% relative WER, and the
# stream's WER and compute per configuration). Run it on a quiet machine. With LM=PATH (an LM built
# for the runs' tokenizer, e.g. exp/small/lm.pt), dev is also decoded with beam search + LM and the
# stream decodes with it.
# Usage: [LM=PATH] bash scripts/compare_runs.sh OUT_DIR DATA_DIR K RUN [RUN ...]
#   RUN: a run directory (its last K checkpoints are averaged) or an exported model file (used as is)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: compare_runs.sh OUT_DIR DATA_DIR K RUN_DIR...}
data=${2:?usage: compare_runs.sh OUT_DIR DATA_DIR K RUN_DIR...}
k=${3:?usage: compare_runs.sh OUT_DIR DATA_DIR K RUN_DIR...}
shift 3
lm_eval=(--decoding greedy); lm_stream=()
if [ -n "${LM:-}" ]; then lm_eval=(--decoding greedy+lm --lm "$LM"); lm_stream=(--lm "$LM"); fi
for run in "$@"; do
  name=$(basename "$run" .pt)
  dir="$out/$name"
  mkdir -p "$dir"
  if [ -f "$run" ]; then
    cp "$run" "$dir/model.pt"
  else
    .venv/bin/asr-ee average --exp-dir "$run" --last "$k" --output "$dir/model.pt" --export
  fi
  ev() { .venv/bin/asr-ee evaluate "$1" --model "$dir/model.pt" --quiet --output-dir "$2" "${@:3}"; }
  ev "$data/cuts_dev.jsonl.gz" "$dir/dev" "${lm_eval[@]}"
  ev "$data/cuts_dev.jsonl.gz" "$dir/dev_chunk8" --decoding greedy --attention chunk --chunk-frames 8 \
    --left-context-chunks 4
  ev "$data/cuts_test_heldout_voices.jsonl.gz" "$dir/heldout" --decoding greedy
  # the stream itself (chunk 8, left context 4): fixed exits, and entropy exits with copy and recompute
  .venv/bin/python benchmarks/streaming_rtf.py --model "$dir/model.pt" --cuts "$data/cuts_dev.jsonl.gz" \
    --limit "${STREAM_LIMIT:-100}" --criterion entropy --thresholds "${STREAM_THRESHOLDS:-0.02,0.05}" --per-exit \
    --policies "${STREAM_POLICIES:-copy,recompute}" "${lm_stream[@]}" \
    --json-out "$dir/stream_dev.json" --plot "$dir/stream_dev.png" > "$dir/stream_dev.txt"
done
.venv/bin/python scripts/summarize_evals.py "$out"
