#!/usr/bin/env bash
# The shipped model's ONNX export, exp/small/onnx/ (fp32 graphs split at the exits, model.json with
# the model's defaults and the sha256 of the model file it came from, the tokenizer, and the LM the
# defaults name). The recognizer runs it by default when onnxruntime is installed; it falls back to
# torch with a note while the export is older than exp/small/model.pt. Rerun after shipping a model.
# Usage: bash scripts/export_shipped_onnx.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-exp/small/onnx}
rm -rf "$out.tmp"
.venv/bin/asr-ee export --model exp/small/model.pt --output "$out.tmp"
rm -rf "$out"
mv "$out.tmp" "$out"
du -sh "$out"
