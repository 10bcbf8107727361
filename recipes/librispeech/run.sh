#!/usr/bin/env bash
# LibriSpeech recipe: lhotse manifests of an unpacked LibriSpeech (openslr.org/12, unpacked so that
# CORPUS_DIR/LibriSpeech/<part>/<spk>/<chapter>/ exist), fbank features, noise and tokenizer, then
# a model trained on it, then (with LM_TEXT) a token LM; e.g. LM_TEXT from LibriSpeech's
# librispeech-lm-norm.txt (openslr.org/11), which leaves out the dev and test books.
#
# Usage: recipes/librispeech/run.sh CORPUS_DIR [CONF]      CONF: clean100 | full960 (default: clean100)
# Stages and environment (DATA_DIR, EXP_DIR, STAGE, STOP_STAGE, LM_TEXT): recipes/common/corpus_stages.sh
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../common/corpus_stages.sh" librispeech clean100 "$@"
