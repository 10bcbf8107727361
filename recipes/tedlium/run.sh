#!/usr/bin/env bash
# TED-LIUM 3 recipe: lhotse manifests of an unpacked TEDLIUM_release-3 (openslr.org/51; legacy
# split, CORPUS_DIR/TEDLIUM_release-3/legacy/{train,dev,test}/{sph,stm}/), one cut per .stm segment,
# fbank features, noise and tokenizer, then a model trained on it, then (with LM_TEXT) a token LM;
# e.g. LM_TEXT from TED-LIUM 3's LM/ text, which leaves out the dev and test talks. sph2pipe is not
# needed: the .sph files are read with libsndfile when it is missing.
#
# Usage: recipes/tedlium/run.sh CORPUS_DIR [CONF]          CONF: tedlium3 (default)
# Stages and environment (DATA_DIR, EXP_DIR, STAGE, STOP_STAGE, LM_TEXT): recipes/common/corpus_stages.sh
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../common/corpus_stages.sh" tedlium tedlium3 "$@"
