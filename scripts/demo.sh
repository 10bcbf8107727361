#!/usr/bin/env bash
# The main job: set up (if needed), then transcribe sample audio with the shipped model through
# the streaming recognizer, printing each file's text and its per-chunk exit layers.
# Samples: a recorded human voice shipped by alsa-utils, and sentences spoken by a held-out
# text-to-speech voice (flite awb) that the model never heard in training.
# Usage: bash scripts/demo.sh [audio files...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ $# -gt 0 ]; then
  exec .venv/bin/asr-ee transcribe "$@"
fi
samples=$(mktemp -d)
trap 'rm -rf "$samples"' EXIT
cp /usr/share/sounds/alsa/Front_Center.wav "$samples/human_front_center.wav"
flite -voice awb -t "the weather is nice today and we will go for a walk" -o "$samples/flite_awb_1.wav"
flite -voice awb -t "please tell me what time it is" -o "$samples/flite_awb_2.wav"
if [ -f exp/small/onnx/model.json ] && .venv/bin/python -c "import onnxruntime, kaldi_native_fbank" 2>/dev/null; then
  model="exp/small/onnx (the shipped model's ONNX export, on onnxruntime)"
else
  model="exp/small/model.pt (torch)"
fi
echo "transcribing with $model (streaming, dynamic exits, load-aware cap):"
.venv/bin/asr-ee transcribe --show-exits "$samples"/*.wav
