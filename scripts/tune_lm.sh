#!/usr/bin/env bash
# Choose the shallow-fusion weights on the dev split: evaluate every exit with beam search + LM for
# each LM_WEIGHT:LENGTH_BONUS pair, then print one row per pair (WER per exit).
# Usage: bash scripts/tune_lm.sh DATA_DIR OUT_DIR ["0.6:1.5 0.8:2.0 1.0:2.5"] [MODEL] [LM]
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${1:?usage: tune_lm.sh DATA_DIR OUT_DIR [PAIRS] [MODEL] [LM]}
out=${2:?usage: tune_lm.sh DATA_DIR OUT_DIR [PAIRS] [MODEL] [LM]}
pairs=${3:-"0.6:1.5 0.8:2.0 1.0:2.5"}
model=${4:-exp/small/model.pt}
lm=${5:-exp/small/lm.pt}
for pair in $pairs; do
  weight=${pair%%:*}; bonus=${pair##*:}
  .venv/bin/asr-ee evaluate "$data_dir/cuts_dev.jsonl.gz" --model "$model" --decoding lm --lm "$lm" \
    --lm-weight "$weight" --length-bonus "$bonus" --criteria fixed --threads 1 --quiet --no-plot \
    --output-dir "$out/w${weight}_b${bonus}" > /dev/null
done
.venv/bin/python - "$out" $pairs <<'EOF'
import json, sys
from pathlib import Path
out, pairs = Path(sys.argv[1]), sys.argv[2:]
for pair in pairs:
    weight, bonus = pair.split(":")
    summary = json.loads((out / f"w{weight}_b{bonus}" / "results.json").read_text())
    rows = [r for r in summary["per_exit"] if r["decoding"] == "lm"]
    print(f"lm weight {weight:>4s} length bonus {bonus:>4s}: WER per exit (layers "
          f"{'/'.join(str(r['exit_layer']) for r in rows)}) " + " / ".join(f"{r['wer']:.2f}" for r in rows))
EOF
