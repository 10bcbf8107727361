#!/usr/bin/env bash
# Issue 15's figures for one model: WER per voice group (training voices = `test`, held-out voices,
# the unseen natural voice, with KOKORO_DIR set the held-out Kokoro voice, and with WIDE_DIR set (the
# `kokoro_wide.yaml` extension) the held-out Kokoro and Piper voices on words the base corpus never had:
# wide_kokoro, wide_natural), greedy and beam + LM, every exit and the exit criteria, in full context
# and under the streaming chunk mask (8 frames, 4 left chunks: what a stream computes); and the 8
# recorded human clips of alsa-utils transcribed by the streaming recognizer with the model's LM
# and defaults (no load controller: its exits follow the machine's load, not the audio).
# With a learned gate beside the model (model.gate.json), also the shipped criterion streamed: the gate at
# GATE_THRESHOLD (default: the model's own gate threshold, 0.75 where it names none) and the fixed exits, MODEL_DIR/eval/gate_default/<split>/.
# Writes MODEL_DIR/eval/<split>[_chunk8]/ and MODEL_DIR/eval/alsa.tsv, then prints the summary table
# (scripts/voice_groups.py).
# Usage: bash scripts/evaluate_voice_groups.sh MODEL_DIR DATA_DIR NATURAL_DIR [SPLITS]
#   MODEL_DIR holds model.pt and lm.pt; SPLITS default "test test_heldout_voices natural", plus
#   kokoro_heldout when KOKORO_DIR (an `asr-ee prepare kokoro` folder) is set, wide_kokoro and
#   wide_natural when WIDE_DIR is (its LM must leave their sentences out: see kokoro_wide.yaml),
#   hibari_heldout when NATIVE_DIR is.
set -euo pipefail
cd "$(dirname "$0")/.."
model_dir=${1:?usage: evaluate_voice_groups.sh MODEL_DIR DATA_DIR NATURAL_DIR [SPLITS]}
data_dir=${2:?DATA_DIR}
natural_dir=${3:?NATURAL_DIR}
kokoro_dir=${KOKORO_DIR:-}
wide_dir=${WIDE_DIR:-}
native_dir=${NATIVE_DIR:-}
splits=${4:-test test_heldout_voices natural${kokoro_dir:+ kokoro_heldout}${wide_dir:+ wide_kokoro wide_natural}${native_dir:+ hibari_heldout}}
threads=${THREADS:-1}
asr=".venv/bin/asr-ee"
gate_threshold=${GATE_THRESHOLD:-$(.venv/bin/python -c "import sys; from asr_ee.checkpoint import load_checkpoint
criterion = (load_checkpoint(sys.argv[1]).get('info', {}).get('defaults') or {}).get('criterion') or {}
print(criterion.get('threshold', 0.75) if criterion.get('kind') == 'gate' else 0.75)" "$model_dir/model.pt")}
for split in $splits; do
  cuts="$data_dir/cuts_$split.jsonl.gz"
  [ "$split" = natural ] && cuts="$natural_dir/cuts_natural.jsonl.gz"
  [ "$split" = kokoro_heldout ] && cuts="${kokoro_dir:?KOKORO_DIR}/cuts_kokoro_heldout.jsonl.gz"
  [ "$split" = wide_kokoro ] && cuts="${wide_dir:?WIDE_DIR}/cuts_kokoro_heldout.jsonl.gz"
  [ "$split" = wide_natural ] && cuts="${wide_dir:?WIDE_DIR}/cuts_natural_heldout.jsonl.gz"
  [ "$split" = hibari_heldout ] && cuts="${native_dir:?NATIVE_DIR}/cuts_hibari_heldout.jsonl.gz"
  out="$model_dir/eval/gate_default/$split"
  if [ -f "$model_dir/model.gate.json" ] && [ ! -f "$out/results.json" ]; then  # the shipped criterion: the gate
    echo "== $out"
    "$asr" evaluate "$cuts" --model "$model_dir/model.pt" --lm "$model_dir/lm.pt" --decoding greedy+lm \
      --criteria gate,fixed --thresholds "gate=$gate_threshold" --attention chunk --chunk-frames 8 \
      --left-context-chunks 4 --threads "$threads" --output-dir "$out" --quiet
  fi
  for attention in full chunk; do
    out="$model_dir/eval/$split"; extra=()
    [ "$attention" = chunk ] && { out="${out}_chunk8"; extra=(--left-context-chunks 4); }
    [ -f "$out/results.json" ] && { echo "== $out: done"; continue; }
    echo "== $out"
    "$asr" evaluate "$cuts" --model "$model_dir/model.pt" --lm "$model_dir/lm.pt" --decoding greedy+lm \
      --attention "$attention" --chunk-frames 8 "${extra[@]}" --threads "$threads" \
      --output-dir "$out" --quiet
  done
done
# the recorded human voice of alsa-utils: reference = the file name ("Front_Center" -> "front center")
clips=(/usr/share/sounds/alsa/{Front,Rear,Side}_*.wav)
"$asr" transcribe "${clips[@]}" --model "$model_dir/model.pt" --lm "$model_dir/lm.pt" --no-controller \
  --threads "$threads" > "$model_dir/eval/alsa.tsv"
.venv/bin/python scripts/voice_groups.py "$model_dir"
