#!/usr/bin/env bash
# Train the small EE-Conformer and the small Splitformer side by side on one lent GPU machine
# (an H200 with 16 CPU cores, no network), bounded by wall-clock minutes, and bring back the averaged
# models. This is how the shipped model's first stage was trained; see exp/small/RESULTS.md.
#
# Prepare here (the packed corpus and the missing Python packages travel with the working tree,
# in the git-ignored folder .gpu/):
#   python scripts/pack_corpus_audio.py pack DATA_DIR .gpu/pack --manifests cuts_train.jsonl.gz \
#       cuts_dev.jsonl.gz cuts_noise.jsonl.gz && tar cf .gpu/pack.tar -C .gpu pack && rm -r .gpu/pack
#   pip download (cp312 wheels of lhotse, lilcom, cytoolz, intervaltree, soundfile, cffi, pycparser,
#       audioread, kaldialign) -d .gpu/whl
# Run there:   bash scripts/train_on_gpu.sh MINUTES      (writes into $OUT)
# Then here:   fine-tune on the original audio with init_from=... (recipes/offline_tts/conf/train_small_finetune.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-7}
out=${OUT:-/tmp/asr_ee_gpu_out}
mkdir -p "$out" /tmp/pack /tmp/runs
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD LHOTSE_AUDIO_BACKEND=LibsndfileBackend PYTHONUNBUFFERED=1
tar xf .gpu/pack.tar -C /tmp/pack
python3 scripts/pack_corpus_audio.py unpack /tmp/pack/pack --jobs 16
data=$(python3 -c "import json; print(json.load(open('/tmp/pack/pack/index.json'))['data_dir'])")
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, lhotse; print('torch', torch.__version__, 'lhotse', lhotse.__version__)"
pids=()
for arch in conformer splitformer; do
  python3 -m asr_ee.cli train --config "recipes/offline_tts/conf/train_small_${arch}_gpu.yaml" \
    --exp-dir "/tmp/runs/$arch" --data-dir "$data" "max_wall_minutes=$minutes" ${ASR_EE_GPU_OVERRIDES:-} > "$out/train_$arch.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for arch in conformer splitformer; do
  tr '\r' '\n' < "$out/train_$arch.log" | grep -E "valid loss|Error|error" | tail -5 || true
  if compgen -G "/tmp/runs/$arch/checkpoints/step-*.pt" > /dev/null; then
    python3 -m asr_ee.cli average --exp-dir "/tmp/runs/$arch" --last 4 --output "$out/${arch}_avg.pt" --export
    python3 -m asr_ee.cli average --exp-dir "/tmp/runs/$arch" --last 1 --output "$out/${arch}_last.pt" --export
    tar czf "$out/${arch}_run.tgz" -C "/tmp/runs/$arch" train.yaml tensorboard
  fi
done
ls -la "$out"
exit $status
