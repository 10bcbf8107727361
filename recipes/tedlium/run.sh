#!/usr/bin/env bash
# TED-LIUM 3 recipe: lhotse manifests of an unpacked TEDLIUM_release-3 (openslr.org/51; legacy
# split, CORPUS_DIR/TEDLIUM_release-3/legacy/{train,dev,test}/{sph,stm}/), one cut per .stm segment,
# fbank features, noise and tokenizer, then a model trained on it. sph2pipe is not needed: the
# .sph files are read with libsndfile when it is missing.
#
# Usage: recipes/tedlium/run.sh CORPUS_DIR [CONF]          CONF: tedlium3 (default)
#   stage 1  asr-ee prepare tedlium -> $DATA_DIR/cuts_{train,dev,test}.jsonl.gz (train speed-perturbed),
#            $DATA_DIR/cuts_noise.jsonl.gz, $DATA_DIR/tokenizer/bpe.model, $DATA_DIR/corpus.json
#   stage 2  asr-ee train (reads conf/train_CONF.yaml)
#   stage 3  asr-ee lm -> $EXP_DIR/lm.pt, a token 4-gram for beam search, from LM_TEXT (one sentence per
#            line; e.g. TED-LIUM 3's LM/ text, which leaves out the dev and
#            test talks); skipped when LM_TEXT is not set. Counting is pure Python
#            (measured: 0.59M words took 18 s and 0.86 GB at order 4): subsample a large text first, e.g.
#            shuf -n 2000000 librispeech-lm-norm.txt > lm_text.txt
# Environment: DATA_DIR (default data/tedlium_CONF), EXP_DIR (default exp/tedlium_CONF),
#   STAGE and STOP_STAGE (default 1 and 3), LM_TEXT. Reruns skip the finished parts of a build.
set -euo pipefail

corpus_dir=${1:?usage: recipes/tedlium/run.sh CORPUS_DIR [CONF]}
conf=${2:-tedlium3}
recipe=recipes/tedlium
data_dir=${DATA_DIR:-data/tedlium_$conf}
exp_dir=${EXP_DIR:-exp/tedlium_$conf}

if [ "${STAGE:-1}" -le 1 ] && [ "${STOP_STAGE:-3}" -ge 1 ]; then
  asr-ee prepare tedlium --config "$recipe/conf/$conf.yaml" --output-dir "$data_dir" \
    "corpus_dir=$corpus_dir"
fi

# stage 2: train an early-exit encoder on the prepared data
if [ "${STAGE:-1}" -le 2 ] && [ "${STOP_STAGE:-3}" -ge 2 ]; then
  asr-ee train --config "$recipe/conf/train_$conf.yaml" --data-dir "$data_dir" --exp-dir "$exp_dir"
fi

# stage 3: the language model beam search fuses with CTC (asr-ee evaluate/transcribe --lm EXP_DIR/lm.pt)
if [ "${STAGE:-1}" -le 3 ] && [ "${STOP_STAGE:-3}" -ge 3 ] && [ -n "${LM_TEXT:-}" ]; then
  asr-ee lm --tokenizer "$data_dir/tokenizer/bpe.model" --text "$LM_TEXT" --order 4 --min-count 2 \
    --output "$exp_dir/lm.pt"
fi
