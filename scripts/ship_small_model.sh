#!/usr/bin/env bash
# Turn a training run into the shipped default model and measure it: average the last checkpoints,
# export exp/small/model.pt (float16 weights + config + tokenizer), build the token LM for its
# tokenizer (exp/small/lm.pt: fortunes + WordNet minus every sentence overlapping dev/test/held-out),
# then evaluate every exit and exit criterion on dev, test and test_heldout_voices (greedy, and beam
# search with the LM) into exp/small/eval/<split>/ (per-utterance outputs gzipped: utterances.jsonl.gz).
# Usage: bash scripts/ship_small_model.sh RUN_DIR DATA_DIR [LAST_K]
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir=${1:?usage: ship_small_model.sh RUN_DIR DATA_DIR [LAST_K]}
data_dir=${2:?usage: ship_small_model.sh RUN_DIR DATA_DIR [LAST_K]}
last=${3:-4}
mkdir -p exp/small
.venv/bin/asr-ee average --exp-dir "$run_dir" --last "$last" --output exp/small/model.pt --export
cp "$run_dir/train.yaml" exp/small/train.yaml
.venv/bin/asr-ee lm --data-dir "$data_dir" --order 4 --min-count 1 --output exp/small/lm.pt
for split in dev test test_heldout_voices; do
  .venv/bin/asr-ee evaluate "$data_dir/cuts_$split.jsonl.gz" --decoding greedy+lm --quiet \
    --output-dir "exp/small/eval/$split"
done
.venv/bin/asr-ee evaluate "$data_dir/cuts_test.jsonl.gz" --decoding greedy+lm --quiet --attention chunk \
  --chunk-frames 8 --left-context-chunks 4 --output-dir exp/small/eval/test_chunk8
gzip -f exp/small/eval/*/utterances.jsonl   # keeps exp/small (model + evaluations) under 20 MB
du -sh exp/small
