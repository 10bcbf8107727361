#!/usr/bin/env bash
# The stages every corpus recipe runs (recipes/<corpus>/run.sh calls this with its corpus name):
#   stage 1  asr-ee prepare CORPUS --config recipes/CORPUS/conf/CONF.yaml -> $DATA_DIR: cuts_<split>.jsonl.gz
#            (train speed-perturbed), cuts_noise.jsonl.gz, tokenizer/bpe.model, corpus.json
#   stage 2  asr-ee train --config recipes/CORPUS/conf/train_CONF.yaml -> $EXP_DIR
#   stage 3  asr-ee lm -> $EXP_DIR/lm.pt, a token 4-gram for beam search, from LM_TEXT (one sentence per
#            line, leaving out the dev and test text); skipped when LM_TEXT is not set. Counting is pure
#            Python (measured: 0.59M words took 18 s and 0.86 GB at order 4): subsample a large text
#            first, e.g. shuf -n 2000000 lm_text_full.txt > lm_text.txt
#
# Usage: recipes/common/corpus_stages.sh CORPUS DEFAULT_CONF CORPUS_DIR [CONF]
# Environment: DATA_DIR (default data/CORPUS_CONF), EXP_DIR (default exp/CORPUS_CONF),
#   STAGE and STOP_STAGE (default 1 and 3), LM_TEXT. Reruns skip the finished parts of a build.
set -euo pipefail

corpus=${1:?usage: corpus_stages.sh CORPUS DEFAULT_CONF CORPUS_DIR [CONF]}
default_conf=${2:?usage: corpus_stages.sh CORPUS DEFAULT_CONF CORPUS_DIR [CONF]}
corpus_dir=${3:?usage: recipes/$corpus/run.sh CORPUS_DIR [CONF]}
conf=${4:-$default_conf}
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")/../$corpus" && pwd)
data_dir=${DATA_DIR:-data/${corpus}_$conf}
exp_dir=${EXP_DIR:-exp/${corpus}_$conf}
stage=${STAGE:-1}
stop_stage=${STOP_STAGE:-3}

# stage 1: manifests, features, noise and tokenizer
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  asr-ee prepare "$corpus" --config "$recipe/conf/$conf.yaml" --output-dir "$data_dir" "corpus_dir=$corpus_dir"
fi

# stage 2: train an early-exit encoder on the prepared data
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  asr-ee train --config "$recipe/conf/train_$conf.yaml" --data-dir "$data_dir" --exp-dir "$exp_dir"
fi

# stage 3: the language model beam search fuses with CTC (asr-ee evaluate/transcribe --lm EXP_DIR/lm.pt)
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ] && [ -n "${LM_TEXT:-}" ]; then
  asr-ee lm --tokenizer "$data_dir/tokenizer/bpe.model" --text "$LM_TEXT" --order 4 --min-count 2 \
    --output "$exp_dir/lm.pt"
fi
