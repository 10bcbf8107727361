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
from asr_ee.data.natural_corpus import RenderJob, build_beside_base, unused_sentences
from asr_ee.data.prepare import manifest_path
from asr_ee.data.voices import PseudoSpeakerRanges, draw_pseudo_speaker

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


def plan_kokoro_corpus(cfg: KokoroCorpusConfig, output_dir: Path) -> dict[str, list[RenderJob]]:
    """The jobs of both splits, deterministic from ``cfg.seed`` and the base corpus."""
    base = Path(cfg.base_dir)
    unused = unused_sentences(base, cfg.seed)
    if len(unused) < cfg.heldout_utterances:
        raise ConfigError(f"only {len(unused)} base sentences are unused by training; "
                          f"heldout_utterances={cfg.heldout_utterances} is too many")
    audio = output_dir / "audio"
    held = KokoroSettings((cfg.heldout_voice,), (1.0,), 1.0)
    plans = {"kokoro_heldout": [
        RenderJob(f"kokoro_heldout-{i:06d}", text, held.id, "kokoro", cfg.heldout_voice,
                  str(audio / "kokoro_heldout" / f"kokoro_heldout-{i:06d}.flac"), kokoro=held)
        for i, text in enumerate(unused[:cfg.heldout_utterances])]}
    texts = sorted({s.text for s in SupervisionSet.from_file(manifest_path(base, "supervisions", "train"))})
    rng = random.Random(f"{cfg.seed}-kokoro")
    train = []
    for i in range(cfg.train_utterances):
        settings = draw_kokoro_settings(cfg.kokoro, rng)
        speaker = draw_pseudo_speaker(cfg.pseudo, rng) if rng.random() < cfg.pseudo_prob else None
        utt = f"train_kokoro-{i:06d}"
        name = settings.id + (f"+{speaker.id}" if speaker else "")
        train.append(RenderJob(utt, rng.choice(texts), name, "kokoro", "+".join(settings.voices),
                               str(audio / "train_kokoro" / f"{utt}.flac"), kokoro=settings, pseudo=speaker))
    plans["train_kokoro"] = train
    return plans


def prepare_kokoro_corpus(cfg: KokoroCorpusConfig, output_dir: str | Path) -> dict[str, Any]:
    """Build (or finish building) the extension in ``output_dir``; returns its summary."""
    return build_beside_base("kokoro", cfg, output_dir, plan_kokoro_corpus, "kokoro_heldout")
