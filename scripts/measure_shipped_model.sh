#!/usr/bin/env bash
# Every benchmark figure the README reports for the shipped model, written to exp/small/bench/.
# Run on a quiet machine (nothing else busy): the speed figures are only as good as that.
# Usage: bash scripts/measure_shipped_model.sh DATA_DIR [model-only]
#   model-only: skip the two benchmarks that do not use the shipped model (encoder forward, training
#   throughput of the `small` preset)
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${1:?usage: measure_shipped_model.sh DATA_DIR}
out=exp/small/bench
mkdir -p "$out"
py=.venv/bin/python
run() { local name=$1; shift; echo "== $name: $*"; "$@" 2>&1 | tee "$out/$name.txt"; }
if [ "${2:-}" != model-only ]; then
  run encoder_forward $py benchmarks/encoder_forward.py --preset small --batch 8 --seconds 10 --repeats 30 --threads 1
  run train_throughput $py benchmarks/train_throughput.py --data-dir "$data_dir" --preset small --steps 20 --threads 1 2
fi
# streaming as the commands run it (beam search + the shipped LM), then CTC alone (greedy) for comparison
run streaming_rtf $py benchmarks/streaming_rtf.py --cuts "$data_dir/cuts_test.jsonl.gz" --limit 150 --lm \
  --criterion entropy --thresholds 0.01,0.02,0.05 --per-exit --json-out "$out/streaming_rtf.json" \
  --plot "$out/streaming_rtf.png"
run streaming_rtf_greedy $py benchmarks/streaming_rtf.py --cuts "$data_dir/cuts_test.jsonl.gz" --limit 150 \
  --criterion entropy --thresholds 0.01,0.02 --policies copy
run streaming_load $py benchmarks/streaming_load.py --cuts "$data_dir/cuts_test.jsonl.gz" --seconds 40 --lm \
  --plot "$out/streaming_load.png"
run evaluate_speed $py benchmarks/evaluate_speed.py "$data_dir/cuts_test.jsonl.gz" --decoding greedy+lm --threads 2
