"""Kokoro's voices beside an offline TTS corpus: natural-sounding speakers to train on, and one
held out to test on.

Built beside a finished offline corpus (``base_dir``) as :mod:`asr_ee.data.natural_corpus` is,
with the Kokoro voices of :mod:`asr_ee.data.kokoro_voice`. Splits, ``cuts_<split>.jsonl.gz``:

``train_kokoro``
    ``train_utterances`` base training sentences, each spoken by a speaker drawn from the
    training voices (one voice, or a blend of two or three), at a random speed, and with
    probability ``pseudo_prob`` resynthesized as a random Praat pseudo-speaker on top.
``kokoro_heldout``
    ``heldout_voice`` (never in ``train_kokoro``, alone or in a blend) at speed 1, speaking the
    first ``heldout_utterances`` of the sentences no base split holds (with the natural
    extension's seed, the natural split's own sentences): an unseen voice of this kind.

``natural_heldout`` (with ``heldout_piper``)
    The same held-out sentences spoken by the Piper voice at its default settings (unseen by model
    A; model B trains on Piper, for it only the words are new).

``text: wide`` draws the sentences from outside the base corpus instead: every clean sentence of
the text sources whose words are among the ``wide_top_words`` most frequent, that no split of the
base corpus holds (its train pool included). The held-out splits take the first
``heldout_utterances`` of them in a seeded order and training the next ``train_utterances``
(each once): text the model never read, with words the base corpus never had (the base corpus
keeps to the top 3,000 words). Speech a user brings is not limited to the base corpus's
vocabulary; ``text: base`` (the default) trains on base training sentences.

``text/sentences_kokoro_heldout.txt`` lists the held-out sentences (``asr-ee lm --exclude``).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from lhotse import SupervisionSet

from asr_ee.config import ConfigError
from asr_ee.data.kokoro_voice import KOKORO_VOICES, KokoroRanges, KokoroSettings, draw_kokoro_settings
from asr_ee.data.natural_corpus import RenderJob, base_sentences, build_beside_base, unused_sentences
from asr_ee.data.prepare import manifest_path
from asr_ee.data.voices import PiperSettings, PseudoSpeakerRanges, draw_pseudo_speaker

__all__ = ["KokoroCorpusConfig", "plan_kokoro_corpus", "prepare_kokoro_corpus"]

@dataclasses.dataclass
class KokoroCorpusConfig:
    """What the extension holds (see the module doc); everything is determined by ``seed``."""

    base_dir: str = "/work/data/offline_tts_small"
    seed: int = 0
    train_utterances: int = 1600
    heldout_utterances: int = 200
    heldout_voice: str = "jf_gongitsune"
    pseudo_prob: float = 0.5
    text: str = "base"             # "base": base training sentences; "wide": sentences outside the base corpus
    wide_top_words: int = 10000    # with text "wide": sentences whose words are all among this many most frequent
    heldout_piper: bool = False    # also the held-out sentences in the Piper voice (split natural_heldout)
    kokoro: KokoroRanges = dataclasses.field(default_factory=KokoroRanges)
    pseudo: PseudoSpeakerRanges = dataclasses.field(default_factory=PseudoSpeakerRanges)
    num_jobs: int = 2

    def __post_init__(self) -> None:
        if min(self.train_utterances, self.heldout_utterances) < 0:
            raise ConfigError("train_utterances and heldout_utterances must be >= 0")
        if self.heldout_voice not in KOKORO_VOICES:
            raise ConfigError(f"heldout_voice must be one of {KOKORO_VOICES}, got {self.heldout_voice!r}")
        self.kokoro.voices = tuple(self.kokoro.voices)
        if self.heldout_voice in self.kokoro.voices:
            raise ConfigError(f"heldout_voice {self.heldout_voice} is also a training voice "
                              f"(kokoro.voices {list(self.kokoro.voices)}): hold it out or pick another")
        if not self.kokoro.voices or any(v not in KOKORO_VOICES for v in self.kokoro.voices):
            raise ConfigError(f"kokoro.voices must be some of {KOKORO_VOICES}, got {self.kokoro.voices}")
        if not 0 <= self.pseudo_prob <= 1:
            raise ConfigError(f"pseudo_prob must be in [0, 1], got {self.pseudo_prob}")
        if self.text not in ("base", "wide"):
            raise ConfigError(f"text must be 'base' or 'wide', got {self.text!r}")
        if self.wide_top_words < 1:
            raise ConfigError(f"wide_top_words must be >= 1, got {self.wide_top_words}")


def wide_sentences(cfg: KokoroCorpusConfig) -> list[str]:
    """Sentences of the text sources within the ``wide_top_words`` most frequent words that no split
    of the base corpus holds, in an order fixed by ``cfg.seed``."""
    from asr_ee.data.text_sources import load_sentences

    base = Path(cfg.base_dir)
    taken = {s for split in ("train", "dev", "test", "test_heldout_voices") for s in base_sentences(base, split)}
    pool = sorted(set(load_sentences(cfg.wide_top_words).sentences) - taken)
    random.Random(f"{cfg.seed}-wide").shuffle(pool)
    return pool


def plan_kokoro_corpus(cfg: KokoroCorpusConfig, output_dir: Path) -> dict[str, list[RenderJob]]:
    """The jobs of every split, deterministic from ``cfg.seed`` and the base corpus."""
    base = Path(cfg.base_dir)
    if cfg.text == "wide":
        pool = wide_sentences(cfg)
        needed = cfg.heldout_utterances + cfg.train_utterances
        if len(pool) < needed:
            raise ConfigError(f"only {len(pool)} sentences within the top {cfg.wide_top_words} words are outside "
                              f"the base corpus; heldout_utterances + train_utterances = {needed} (raise wide_top_words)")
        held_texts = pool[:cfg.heldout_utterances]
        train_texts = iter(pool[cfg.heldout_utterances:needed])
    else:
        unused = unused_sentences(base, cfg.seed)
        if len(unused) < cfg.heldout_utterances:
            raise ConfigError(f"only {len(unused)} base sentences are unused by training; "
                              f"heldout_utterances={cfg.heldout_utterances} is too many")
        held_texts = unused[:cfg.heldout_utterances]
        train_texts = None
    audio = output_dir / "audio"
    held = KokoroSettings((cfg.heldout_voice,), (1.0,), 1.0)
    plans = {"kokoro_heldout": [
        RenderJob(f"kokoro_heldout-{i:06d}", text, held.id, "kokoro", cfg.heldout_voice,
                  str(audio / "kokoro_heldout" / f"kokoro_heldout-{i:06d}.flac"), kokoro=held)
        for i, text in enumerate(held_texts)]}
    if cfg.heldout_piper:
        plans["natural_heldout"] = [
            RenderJob(f"natural_heldout-{i:06d}", text, "piper-joe", "piper", "joe",
                      str(audio / "natural_heldout" / f"natural_heldout-{i:06d}.flac"), piper=PiperSettings())
            for i, text in enumerate(held_texts)]
    texts = sorted({s.text for s in SupervisionSet.from_file(manifest_path(base, "supervisions", "train"))})
    rng = random.Random(f"{cfg.seed}-kokoro")
    train = []
    for i in range(cfg.train_utterances):
        settings = draw_kokoro_settings(cfg.kokoro, rng)
        speaker = draw_pseudo_speaker(cfg.pseudo, rng) if rng.random() < cfg.pseudo_prob else None
        utt = f"train_kokoro-{i:06d}"
        name = settings.id + (f"+{speaker.id}" if speaker else "")
        text = next(train_texts) if train_texts is not None else rng.choice(texts)
        train.append(RenderJob(utt, text, name, "kokoro", "+".join(settings.voices),
                               str(audio / "train_kokoro" / f"{utt}.flac"), kokoro=settings, pseudo=speaker))
    plans["train_kokoro"] = train
    return plans


def prepare_kokoro_corpus(cfg: KokoroCorpusConfig, output_dir: str | Path) -> dict[str, Any]:
    """Build (or finish building) the extension in ``output_dir``; returns its summary."""
    return build_beside_base("kokoro", cfg, output_dir, plan_kokoro_corpus, "kokoro_heldout")
