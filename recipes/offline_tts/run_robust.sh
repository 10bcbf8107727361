#!/usr/bin/env bash
# Robust models from the offline corpus (issue 15): the corpus, its natural-voice extension
# (Praat pseudo-speakers, the Piper voice, the unseen `natural` split) and its Kokoro extension
# (four Kokoro voices as 5,007 speakers in three draws, the third on unseen words; one voice held out), then models A and B
# fine-tuned from the base Splitformer with channels, babble, noise and reverberation on the fly,
# averaged, shipped and evaluated per voice group.
#
# Usage: recipes/offline_tts/run_robust.sh
#   stage 1  asr-ee prepare offline + natural + kokoro (three draws) + wide + native (three draws) -> $DATA_DIR,
#            $NATURAL_DIR, $KOKORO_DIR, $KOKORO_MORE_DIR, $KOKORO_WIDE_DIR, $WIDE_CORPUS_DIR, $NATIVE_DIR, $NATIVE_MORE_DIR, $NATIVE_THIRD_DIR
#   stage 2  train A (base + pseudo-speakers + Kokoro) and B (base + pseudo-speakers + the Piper voice),
#            one thread each, side by side; then A's second stage: from A's average, both Kokoro draws at
#            half of the batches; then its third: the wide-text draw added (0.2 of the batches); then its
#            fourth: the wide-text corpus of the base engines at 0.3 of the batches; then its fifth: that corpus
#            at half of the batches; then its sixth: the native English voices at 0.35 of the batches;
#            then its seventh: both native-voice draws at half of the batches; then its eighth: the third draw added
#            (natives at 0.55 of the batches)
#   stage 3  average and evaluate each run, interpolate it 0.5/0.5 with where it started (B: the base; A's
#            fourth stage: the third as shipped), ship A into exp/small
#            (the default model) and B into exp/small-natural, and evaluate both (A's eighth stage: 0.75 of it, 0.25 of the seventh as shipped)
# Environment: DATA_DIR (default data/offline_tts_small), NATURAL_DIR (default data/offline_tts_natural),
#   RUNS (default runs), BASE (the model both start from; default: the base Splitformer as shipped
#   in commit f79b148, taken from git history), STAGE/STOP_STAGE (default 1 and 3).
# Measured (2 cores, other work beside it): stage 1 4 + 13 + 27 + 45 + 41 + 13 + 7 + 10 + 7 min; stage 2 56 min for A
# (1,700 steps, 2026-12-07, beside a second run) and 72 min for B (1,600 steps) side by side, A's second
# stage 57 min (1,700 steps, beside a twin run), its third 52 min (1,400 steps, beside a twin), its fourth
# 33 min (1,000 steps, beside a twin), its fifth 52 min (1,650 steps, beside a twin), its sixth 37 min (1,300 steps, beside a twin), its seventh 33 min (1,100 steps, beside a twin), its eighth 39 min (1,100 steps, beside a twin); stage 3 ~30 min.
set -euo pipefail
recipe=recipes/offline_tts
data_dir=${DATA_DIR:-data/offline_tts_small}
natural_dir=${NATURAL_DIR:-data/offline_tts_natural}
kokoro_dir=${KOKORO_DIR:-data/offline_tts_kokoro}
kokoro_more_dir=${KOKORO_MORE_DIR:-data/offline_tts_kokoro_more}
kokoro_wide_dir=${KOKORO_WIDE_DIR:-data/offline_tts_kokoro_wide}
wide_dir=${WIDE_CORPUS_DIR:-data/offline_tts_wide}
native_dir=${NATIVE_DIR:-data/offline_tts_native}
native_more_dir=${NATIVE_MORE_DIR:-data/offline_tts_native_more}
native_third_dir=${NATIVE_THIRD_DIR:-data/offline_tts_native_third}
runs=${RUNS:-runs}
stage=${STAGE:-1}
stop_stage=${STOP_STAGE:-3}

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  asr-ee prepare offline --config "$recipe/conf/small.yaml" --output-dir "$data_dir"
  asr-ee prepare natural --config "$recipe/conf/natural.yaml" --output-dir "$natural_dir" base_dir="$data_dir"
  asr-ee prepare kokoro --config "$recipe/conf/kokoro.yaml" --output-dir "$kokoro_dir" base_dir="$data_dir"
  asr-ee prepare kokoro --config "$recipe/conf/kokoro_more.yaml" --output-dir "$kokoro_more_dir" base_dir="$data_dir"
  # Kokoro speakers on words the base corpus never had, and the unseen-words test splits
  asr-ee prepare kokoro --config "$recipe/conf/kokoro_wide.yaml" --output-dir "$kokoro_wide_dir" base_dir="$data_dir"
  # the base engines on text the base never had (12,000 sentences, top 10,000 words), clear of kokoro_wide's held-out list
  asr-ee prepare wide --config "$recipe/conf/wide.yaml" --output-dir "$wide_dir" base_dir="$data_dir" \
    "exclude=[$kokoro_wide_dir/text/sentences_kokoro_heldout.txt]"
  # native English voices (Hibari, a natural neural voice, and SVOX Pico) as many speakers, Hibari's held-out split
  asr-ee prepare native --config "$recipe/conf/native.yaml" --output-dir "$native_dir" base_dir="$data_dir" \
    "exclude=[$kokoro_wide_dir/text/sentences_kokoro_heldout.txt]"
  # a second, larger draw of them (12,000 utterances, Hibari in 85%; no held-out split of its own): A's seventh stage
  asr-ee prepare native --config "$recipe/conf/native_more.yaml" --output-dir "$native_more_dir" base_dir="$data_dir" \
    "exclude=[$kokoro_wide_dir/text/sentences_kokoro_heldout.txt]"
  # a third draw (12,000 utterances, Hibari in 90%, 90% pseudo-speakers over wider ranges): A's eighth stage
  asr-ee prepare native --config "$recipe/conf/native_third.yaml" --output-dir "$native_third_dir" base_dir="$data_dir" \
    "exclude=[$kokoro_wide_dir/text/sentences_kokoro_heldout.txt]"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  # A's stages after the first: train_robust_kokoro.yaml from INIT, cooling down from START over STEPS, on the
  # training splits CUTS (relative to DATA_DIR) drawn with WEIGHTS. Usage: a_stage RUN INIT START STEPS CUTS WEIGHTS
  a_stage() {
    asr-ee train --config "$recipe/conf/train_robust_kokoro.yaml" --data-dir "$data_dir" --exp-dir "$runs/$1" \
      init_from="$2" optim.cooldown_start="$3" optim.cooldown_steps="$4" "data.train_cuts=[$5]" "data.train_weights=[$6]"
  }
  base_cuts=cuts_train.jsonl.gz pseudo=../offline_tts_natural/cuts_train_pseudo.jsonl.gz
  kokoro=../offline_tts_kokoro/cuts_train_kokoro.jsonl.gz kokoro_more=../offline_tts_kokoro_more/cuts_train_kokoro.jsonl.gz
  kokoro_wide=../offline_tts_kokoro_wide/cuts_train_kokoro.jsonl.gz wide=../offline_tts_wide/cuts_train_wide.jsonl.gz
  native=../offline_tts_native/cuts_train_native.jsonl.gz native_more=../offline_tts_native_more/cuts_train_native.jsonl.gz
  native_third=../offline_tts_native_third/cuts_train_native.jsonl.gz
  base=${BASE:-$runs/base_splitformer.pt}
  [ -f "$base" ] || git show f79b148:exp/small/model.pt > "$base"
  # the train configs name the natural and Kokoro corpora as ../offline_tts_natural/, ../offline_tts_kokoro/ (and _more/)
  # beside DATA_DIR. A = base + pseudo-speakers + Kokoro's voices (train_robust.yaml, without Kokoro, was A until
  # 2026-12-07); B = base + pseudo-speakers + the Piper voice
  asr-ee train --config "$recipe/conf/train_robust_kokoro.yaml" --data-dir "$data_dir" --exp-dir "$runs/robust_a" \
    init_from="$base" optim.cooldown_start=1350 optim.cooldown_steps=350 &
  asr-ee train --config "$recipe/conf/train_robust_natural.yaml" --data-dir "$data_dir" --exp-dir "$runs/robust_b" \
    init_from="$base" optim.cooldown_start=1250 optim.cooldown_steps=350 &
  wait
  # A's second stage (shipped 2026-12-07): from A's first stage averaged, both Kokoro draws (4,000
  # sentences, 2.4 h, 3,394 speakers) at half of the batches, the same schedule once more
  asr-ee average --exp-dir "$runs/robust_a" --last 4 --output "$runs/robust_a_stage1.pt" --export
  a_stage robust_a2 "$runs/robust_a_stage1.pt" 1350 350 "$base_cuts, $pseudo, $kokoro, $kokoro_more" "0.3, 0.2, 0.2, 0.3"
  # A's third stage (shipped 2026-12-07, evening): from the second stage averaged, 1,400 steps, a
  # Kokoro share of 0.5 as before with 0.2 of the batches from the wide-text draw (unseen words)
  asr-ee average --exp-dir "$runs/robust_a2" --last 4 --output "$runs/robust_a_stage2.pt" --export
  a_stage robust_a3 "$runs/robust_a_stage2.pt" 1050 350 "$base_cuts, $pseudo, $kokoro, $kokoro_more, $kokoro_wide" "0.3, 0.2, 0.15, 0.15, 0.2"
  # A's fourth stage (shipped 2026-12-07, night): from the third stage as it shipped (its average
  # interpolated half-way with the base), 1,000 steps with the wide-text corpus (the base engines on
  # 12,000 sentences outside the base) at 0.3 of the batches; stage 3 interpolates it half-way back to its start
  asr-ee average --exp-dir "$runs/robust_a3" --last 4 --output "$runs/robust_a_stage3_raw.pt" --export
  python scripts/interpolate_models.py "$runs/robust_a_stage3_raw.pt" "$base" 0.5 "$runs/robust_a_stage3.pt"
  a_stage robust_a4 "$runs/robust_a_stage3.pt" 650 350 "$base_cuts, $pseudo, $kokoro, $wide" "0.15, 0.15, 0.4, 0.3"
  # A's fifth stage (shipped 2026-12-07, late night): from the fourth as shipped (its average interpolated half-way
  # with the third), 1,650 steps (cool-down from 1,400) with the wide-text corpus at half of the batches (each of its
  # sentences heard about once); stage 3 interpolates it half-way back to its start
  asr-ee average --exp-dir "$runs/robust_a4" --last 4 --output "$runs/robust_a_stage4_raw.pt" --export
  python scripts/interpolate_models.py "$runs/robust_a_stage4_raw.pt" "$runs/robust_a_stage3.pt" 0.5 "$runs/robust_a_stage4.pt"
  a_stage robust_a5 "$runs/robust_a_stage4.pt" 1400 250 "$base_cuts, $pseudo, $kokoro, $wide" "0.12, 0.08, 0.3, 0.5"
  # A's sixth stage (shipped 2026-12-07, near midnight): from the fifth as shipped (its average interpolated half-way
  # with the fourth), 1,300 steps (cool-down from 1,050) with the native English voices (Hibari, Pico) at 0.35 of the
  # batches; stage 3 ships its average as it is (the stage's rule, eval/ablation_stage6/PLAN.md, picked it)
  asr-ee average --exp-dir "$runs/robust_a5" --last 4 --output "$runs/robust_a_stage5_raw.pt" --export
  python scripts/interpolate_models.py "$runs/robust_a_stage5_raw.pt" "$runs/robust_a_stage4.pt" 0.5 "$runs/robust_a_stage5.pt"
  a_stage robust_a6 "$runs/robust_a_stage5.pt" 1050 250 "$base_cuts, $pseudo, $kokoro, $wide, $native" "0.1, 0.05, 0.2, 0.3, 0.35"
  # A's seventh stage (shipped 2026-12-08): from the sixth as shipped (its average), 1,100 steps (cool-down from 850)
  # with both native-voice draws at half of the batches; stage 3 interpolates it 0.75 with its start (its rule,
  # eval/ablation_stage7/PLAN.md, picked that over the average as it is and the half-way point)
  asr-ee average --exp-dir "$runs/robust_a6" --last 4 --output "$runs/robust_a_stage6.pt" --export
  a_stage robust_a7 "$runs/robust_a_stage6.pt" 850 250 "$base_cuts, $pseudo, $kokoro, $wide, $native, $native_more" "0.08, 0.04, 0.16, 0.22, 0.15, 0.35"
  # A's eighth stage (shipped 2026-12-08, morning): from the seventh as shipped (0.75 of its average, 0.25 of the sixth),
  # 1,100 steps (cool-down from 850) with the third native-voice draw added (natives at 0.55 of the batches, the third
  # draw at 0.3); stage 3 interpolates it 0.75 with its start (its rule, eval/ablation_stage8/PLAN.md, picked that)
  asr-ee average --exp-dir "$runs/robust_a7" --last 4 --output "$runs/robust_a_stage7_raw.pt" --export
  python scripts/interpolate_models.py "$runs/robust_a_stage7_raw.pt" "$runs/robust_a_stage6.pt" 0.75 "$runs/robust_a_stage7.pt"
  a_stage robust_a8 "$runs/robust_a_stage7.pt" 850 250 "$base_cuts, $pseudo, $kokoro, $wide, $native, $native_more, $native_third" \
    "0.08, 0.04, 0.14, 0.19, 0.1, 0.15, 0.3"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  # each run averaged (and evaluated) as it is, then interpolated half-way back to the base weights
  # (WiSE-FT: keeps the unseen-voice gains, gives the synthetic test split back) and shipped
  base=${BASE:-$runs/base_splitformer.pt}
  export WIDE_DIR="$kokoro_wide_dir"  # the LM leaves its held-out sentences out; their splits are evaluated
  bash scripts/ship_small_model.sh "$runs/robust_a8" "$data_dir" 4 "$runs/a_raw" "$natural_dir"
  LM=$runs/a_raw/lm.pt bash scripts/ship_small_model.sh "$runs/robust_b" "$data_dir" 4 "$runs/b_raw" "$natural_dir"
  for pair in "a_raw exp/small" "b_raw exp/small-natural"; do
    set -- $pair
    mkdir -p "$2/eval" && cp "$runs/$1/lm.pt" "$2/lm.pt" && cp "$runs/$1/train.yaml" "$2/train.yaml"
    if [ "$1" = a_raw ]; then  # A's eighth stage: 0.75 of its average, 0.25 of the seventh as shipped (its rule picked it)
      python scripts/interpolate_models.py "$runs/$1/model.pt" "$runs/robust_a_stage7.pt" 0.75 "$2/model.pt"
    else                       # B: half-way back to the base
      python scripts/interpolate_models.py "$runs/$1/model.pt" "$base" 0.5 "$2/model.pt"
    fi
    if [ "$2" = exp/small ]; then  # A, the default model: the learned exit gate, trained on dev for it (the path
      # label and threshold 0.75: eval/gate_label_stage7/NOTES.md's rule, applied in eval/gate_label_stage8/)
      python scripts/stamp_defaults.py "$2/model.pt" \
        '{"lm": "lm.pt", "max_exit_layer": 10, "criterion": {"kind": "gate", "threshold": 0.75}}'
      asr-ee train-gate --model "$2/model.pt" --cuts "$data_dir/cuts_dev.jsonl.gz" --label path --lm "$2/lm.pt" \
        | tee "$2/eval/train_gate.txt"
    fi
    asr-ee evaluate "$data_dir/cuts_dev.jsonl.gz" --model "$2/model.pt" --lm "$2/lm.pt" --decoding greedy+lm --output-dir "$2/eval/dev"
    KOKORO_DIR="$kokoro_dir" NATIVE_DIR="$native_dir" bash scripts/evaluate_voice_groups.sh "$2" "$data_dir" "$natural_dir"  # + WIDE_DIR's splits
  done
  bash scripts/export_shipped_onnx.sh   # model A's ONNX export, what the commands run by default
fi
