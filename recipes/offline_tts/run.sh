#!/usr/bin/env bash
# Offline TTS recipe: a speech corpus synthesized from Debian TTS engines (espeak-ng, flite,
# festival) and text packages (fortunes, wordnet-base), then a model trained on it.
#
# Usage: recipes/offline_tts/run.sh [CONF]          CONF: tiny | small (default: small)
#   stage 1  asr-ee prepare offline -> $DATA_DIR/cuts_{train,dev,test,test_heldout_voices,noise}.jsonl.gz,
#                                      $DATA_DIR/tokenizer/bpe.model, $DATA_DIR/corpus.json
#   stage 2  asr-ee train           (reads conf/train_CONF.yaml)
#   stage 3  asr-ee lm              -> $EXP_DIR/lm.pt: token 4-gram for beam search (fortunes + WordNet
#                                      minus every sentence overlapping dev/test/held-out)
# Environment: DATA_DIR (default data/offline_tts_CONF), EXP_DIR (default exp/offline_tts_CONF),
#   STAGE and STOP_STAGE (default 1 and 3). Reruns skip the finished parts of a build.
# Needs: apt-get install -y --no-install-recommends espeak-ng flite festival festvox-kallpc16k \
#          festvox-kdlpc16k festvox-us-slt-hts sox fortunes fortunes-min wordnet-base
set -euo pipefail

conf=${1:-small}
recipe=recipes/offline_tts
data_dir=${DATA_DIR:-data/offline_tts_$conf}
exp_dir=${EXP_DIR:-exp/offline_tts_$conf}
stage=${STAGE:-1}
stop_stage=${STOP_STAGE:-3}

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  asr-ee prepare offline --config "$recipe/conf/$conf.yaml" --output-dir "$data_dir"
fi

# stage 2: train an early-exit encoder on the prepared data
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  asr-ee train --config "$recipe/conf/train_$conf.yaml" --data-dir "$data_dir" --exp-dir "$exp_dir"
fi

# stage 3: the language model beam search fuses with CTC (asr-ee evaluate/transcribe --lm EXP_DIR/lm.pt)
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  asr-ee lm --data-dir "$data_dir" --order 4 --min-count 1 --output "$exp_dir/lm.pt"
fi
