#!/usr/bin/env bash
# Turn a training run into a shipped model and measure it: average the last checkpoints, export
# OUT_DIR/model.pt (float16 weights + config + tokenizer + the model's default settings), build the
# token LM for its tokenizer (OUT_DIR/lm.pt: fortunes + WordNet minus every sentence overlapping
# dev/test/held-out, with NATURAL_DIR the natural split's sentences and with WIDE_DIR (env: the
# kokoro_wide.yaml extension) its held-out sentences), then evaluate dev and
# every voice group (scripts/evaluate_voice_groups.sh: test, test_heldout_voices, natural; full
# context and streaming chunk mask; greedy and beam + LM; the alsa clips) into OUT_DIR/eval/.
# Usage: bash scripts/ship_small_model.sh RUN_DIR DATA_DIR [LAST_K] [OUT_DIR] [NATURAL_DIR]
#   OUT_DIR default exp/small (the default model every command uses); DEFAULTS (env, JSON) sets
#   the defaults stamped into the model file, default {"lm": "lm.pt", "max_exit_layer": 10}; LM (env)
#   copies an LM built the same way before instead of building it again.
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir=${1:?usage: ship_small_model.sh RUN_DIR DATA_DIR [LAST_K] [OUT_DIR] [NATURAL_DIR]}
data_dir=${2:?usage: ship_small_model.sh RUN_DIR DATA_DIR [LAST_K] [OUT_DIR] [NATURAL_DIR]}
last=${3:-4}
out=${4:-exp/small}
natural_dir=${5:-}
defaults=${DEFAULTS:-'{"lm": "lm.pt", "max_exit_layer": 10}'}
py=.venv/bin/python
mkdir -p "$out"
.venv/bin/asr-ee average --exp-dir "$run_dir" --last "$last" --output "$out/model.pt" --export
$py scripts/stamp_defaults.py "$out/model.pt" "$defaults"
cp "$run_dir/train.yaml" "$out/train.yaml"
exclude=()
[ -n "$natural_dir" ] && exclude=(--exclude "$natural_dir/text/sentences_natural.txt")
[ -n "${WIDE_DIR:-}" ] && exclude+=(--exclude "$WIDE_DIR/text/sentences_kokoro_heldout.txt")
if [ -n "${LM:-}" ]; then cp "$LM" "$out/lm.pt"
else .venv/bin/asr-ee lm --data-dir "$data_dir" "${exclude[@]}" --order 4 --min-count 1 --output "$out/lm.pt"; fi
[ -f "$out/eval/dev/results.json" ] || .venv/bin/asr-ee evaluate "$data_dir/cuts_dev.jsonl.gz" \
  --model "$out/model.pt" --lm "$out/lm.pt" --decoding greedy+lm --quiet --output-dir "$out/eval/dev"
splits="test test_heldout_voices"; [ -n "$natural_dir" ] && splits="$splits natural"
[ -n "${WIDE_DIR:-}" ] && splits="$splits wide_kokoro wide_natural"
bash scripts/evaluate_voice_groups.sh "$out" "$data_dir" "${natural_dir:-none}" "$splits"
gzip -f "$out"/eval/*/utterances.jsonl   # keeps the model folder (model + evaluations) small
du -sh "$out"
