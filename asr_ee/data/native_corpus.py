"""Native English voices beside an offline TTS corpus: Hibari (a natural neural voice) and SVOX Pico,
made into many speakers.

Built beside a finished offline corpus (``base_dir``) as the natural and Kokoro extensions are,
with the voices of :mod:`asr_ee.data.native_voices`. Splits, ``cuts_<split>.jsonl.gz``:

``train_native``
    ``train_utterances`` utterances, each spoken by Hibari (probability ``hibari_prob``, random
    speed and vocoder noise) or by a Pico voice (random voice, speed and pitch), and with
    probability ``pseudo_prob`` resynthesized as a random Praat pseudo-speaker on top: one natural
    voice and two classic ones made into thousands of speakers. With probability ``wide_prob`` the
    sentence comes from outside the base corpus (the wide pool of :func:`asr_ee.data.wide_corpus.wide_pool`:
    within the ``top_words`` most frequent words, no 6-word run shared with any base split or the
    ``exclude`` lists; each once), else it is a base training sentence.
``hibari_heldout``
    Hibari at speed 1 speaking the first ``heldout_utterances`` sentences no base split speaks, in the
    order of ``heldout_text_seed`` (with the natural extension's seed, 0, the `natural` split's own
    sentences: the Piper voice and Hibari on the same words). Hibari's sentences are new to a model
    trained on ``train_native``, its voice is not; for a model that never heard Hibari it is an unseen
    natural voice.

``text/sentences_hibari_heldout.txt`` lists the held-out sentences (``asr-ee lm --exclude``; with seed
0 they are the natural split's, which the shipped LM already leaves out).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from lhotse import SupervisionSet

from asr_ee.config import ConfigError
from asr_ee.data.native_voices import (HibariRanges, HibariSettings, PicoRanges, draw_hibari_settings,
                                       draw_pico_settings)
from asr_ee.data.natural_corpus import RenderJob, build_beside_base, unused_sentences
from asr_ee.data.prepare import manifest_path
from asr_ee.data.voices import PseudoSpeakerRanges, draw_pseudo_speaker
from asr_ee.data.wide_corpus import WideCorpusConfig, base_config, wide_pool

__all__ = ["NativeCorpusConfig", "plan_native_corpus", "prepare_native_corpus"]


@dataclasses.dataclass
class NativeCorpusConfig:
    """What the extension holds (see the module doc); everything is determined by ``seed``."""

    base_dir: str = "/work/data/offline_tts_small"
    seed: int = 5
    train_utterances: int = 8000
    heldout_utterances: int = 350
    heldout_text_seed: int = 0      # the natural extension's seed: its natural split's sentences
    hibari_prob: float = 0.7        # else a Pico voice
    wide_prob: float = 0.5          # a sentence from outside the base corpus, else a base training sentence
    top_words: int = 10000
    exclude: list[str] = dataclasses.field(default_factory=list)  # held-out sentence lists of other extensions
    pseudo_prob: float = 0.8
    hibari: HibariRanges = dataclasses.field(default_factory=HibariRanges)
    pico: PicoRanges = dataclasses.field(default_factory=PicoRanges)
    pseudo: PseudoSpeakerRanges = dataclasses.field(default_factory=PseudoSpeakerRanges)
    num_jobs: int = 2

    def __post_init__(self) -> None:
        if min(self.train_utterances, self.heldout_utterances) < 0:
            raise ConfigError("train_utterances and heldout_utterances must be >= 0")
        for name in ("hibari_prob", "wide_prob", "pseudo_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def plan_native_corpus(cfg: NativeCorpusConfig, output_dir: Path) -> dict[str, list[RenderJob]]:
    """The jobs of every split, deterministic from ``cfg.seed`` and the base corpus."""
    base = Path(cfg.base_dir)
    held_texts = unused_sentences(base, cfg.heldout_text_seed)
    if len(held_texts) < cfg.heldout_utterances:
        raise ConfigError(f"only {len(held_texts)} base sentences are unused by training; "
                          f"heldout_utterances={cfg.heldout_utterances} is too many")
    audio = output_dir / "audio"
    held = HibariSettings()
    plans = {"hibari_heldout": [
        RenderJob(f"hibari_heldout-{i:06d}", text, held.id, "hibari", "heart",
                  str(audio / "hibari_heldout" / f"hibari_heldout-{i:06d}.flac"), hibari=held)
        for i, text in enumerate(held_texts[:cfg.heldout_utterances])]}
    wide = iter(wide_pool(WideCorpusConfig(base_dir=cfg.base_dir, seed=cfg.seed, top_words=cfg.top_words,
                                           exclude=list(cfg.exclude)), base_config(base))
                if cfg.wide_prob > 0 else [])
    base_texts = sorted({s.text for s in SupervisionSet.from_file(manifest_path(base, "supervisions", "train"))})
    rng = random.Random(f"{cfg.seed}-native")
    train = []
    for i in range(cfg.train_utterances):
        if rng.random() < cfg.hibari_prob:
            hibari, pico = draw_hibari_settings(cfg.hibari, rng), None
            name, engine, voice = hibari.id, "hibari", "heart"
        else:
            hibari, pico = None, draw_pico_settings(cfg.pico, rng)
            name, engine, voice = pico.id, "pico", pico.voice
        speaker = draw_pseudo_speaker(cfg.pseudo, rng) if rng.random() < cfg.pseudo_prob else None
        text = next(wide, None) if rng.random() < cfg.wide_prob else None
        text = text if text is not None else rng.choice(base_texts)  # the wide pool ran out: a base sentence
        utt = f"train_native-{i:06d}"
        train.append(RenderJob(utt, text, name + (f"+{speaker.id}" if speaker else ""), engine, voice,
                               str(audio / "train_native" / f"{utt}.flac"), hibari=hibari, pico=pico,
                               pseudo=speaker))
    plans["train_native"] = train
    return plans


def prepare_native_corpus(cfg: NativeCorpusConfig, output_dir: str | Path) -> dict[str, Any]:
    """Build (or finish building) the extension in ``output_dir``; returns its summary."""
    return build_beside_base("native", cfg, output_dir, plan_native_corpus, "hibari_heldout")
