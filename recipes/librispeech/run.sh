#!/usr/bin/env bash
# LibriSpeech recipe: lhotse manifests of an unpacked LibriSpeech (openslr.org/12, unpacked so that
# CORPUS_DIR/LibriSpeech/<part>/<spk>/<chapter>/ exist), fbank features, noise and tokenizer, then
# a model trained on it.
#
# Usage: recipes/librispeech/run.sh CORPUS_DIR [CONF]      CONF: clean100 | full960 (default: clean100)
#   stage 1  asr-ee prepare librispeech -> $DATA_DIR/cuts_<part>.jsonl.gz (train parts speed-perturbed),
#            $DATA_DIR/cuts_noise.jsonl.gz, $DATA_DIR/tokenizer/bpe.model, $DATA_DIR/corpus.json
#   stage 2  asr-ee train (reads conf/train_CONF.yaml)
#   stage 3  asr-ee lm -> $EXP_DIR/lm.pt, a token 4-gram for beam search, from LM_TEXT (one sentence per
#            line; e.g. LibriSpeech's librispeech-lm-norm.txt (openslr.org/11), which leaves out the
#            dev and test books); skipped when LM_TEXT is not set. Counting is pure Python
#            (measured: 0.59M words took 18 s and 0.86 GB at order 4): subsample a large text first, e.g.
#            shuf -n 2000000 librispeech-lm-norm.txt > lm_text.txt
# Environment: DATA_DIR (default data/librispeech_CONF), EXP_DIR (default exp/librispeech_CONF),
#   STAGE and STOP_STAGE (default 1 and 3), LM_TEXT. Reruns skip the finished parts of a build.
set -euo pipefail

corpus_dir=${1:?usage: recipes/librispeech/run.sh CORPUS_DIR [CONF]}
conf=${2:-clean100}
recipe=recipes/librispeech
data_dir=${DATA_DIR:-data/librispeech_$conf}
exp_dir=${EXP_DIR:-exp/librispeech_$conf}

if [ "${STAGE:-1}" -le 1 ] && [ "${STOP_STAGE:-3}" -ge 1 ]; then
  asr-ee prepare librispeech --config "$recipe/conf/$conf.yaml" --output-dir "$data_dir" \
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
