#!/usr/bin/env bash
# LibriSpeech recipe: lhotse manifests of an unpacked LibriSpeech (openslr.org/12, unpacked so that
# CORPUS_DIR/LibriSpeech/<part>/<spk>/<chapter>/ exist), fbank features, noise and tokenizer, then
# a model trained on it.
#
# Usage: recipes/librispeech/run.sh CORPUS_DIR [CONF]      CONF: clean100 | full960 (default: clean100)
#   stage 1  asr-ee prepare librispeech -> $DATA_DIR/cuts_<part>.jsonl.gz (train parts speed-perturbed),
#            $DATA_DIR/cuts_noise.jsonl.gz, $DATA_DIR/tokenizer/bpe.model, $DATA_DIR/corpus.json
#   stage 2  asr-ee train (reads conf/train_CONF.yaml)
# Environment: DATA_DIR (default data/librispeech_CONF), EXP_DIR (default exp/librispeech_CONF),
#   STAGE and STOP_STAGE (default 1 and 2). Reruns skip the finished parts of a build.
set -euo pipefail

corpus_dir=${1:?usage: recipes/librispeech/run.sh CORPUS_DIR [CONF]}
conf=${2:-clean100}
recipe=recipes/librispeech
data_dir=${DATA_DIR:-data/librispeech_$conf}
exp_dir=${EXP_DIR:-exp/librispeech_$conf}

if [ "${STAGE:-1}" -le 1 ] && [ "${STOP_STAGE:-2}" -ge 1 ]; then
  asr-ee prepare librispeech --config "$recipe/conf/$conf.yaml" --output-dir "$data_dir" \
    "corpus_dir=$corpus_dir"
fi

# stage 2: train an early-exit encoder on the prepared data
if [ "${STAGE:-1}" -le 2 ] && [ "${STOP_STAGE:-2}" -ge 2 ]; then
  asr-ee train --config "$recipe/conf/train_$conf.yaml" --data-dir "$data_dir" --exp-dir "$exp_dir"
fi
