"""The base corpus's engines on text it never had: many words, each heard many times.

Built beside a finished offline corpus (``base_dir``, :mod:`asr_ee.data.offline_corpus`) as the
natural and Kokoro extensions are. The base corpus keeps to the 3,000 most frequent words; speech
a user brings does not, and a model does not learn a word it never hears (issue 15: words heard
only in the 2,000 sentences of the Kokoro wide-text draw stayed 83-87% wrong). The fast engines
(espeak-ng, flite, festival) can speak tens of thousands of sentences in minutes. One split,
``cuts_train_wide.jsonl.gz``:

``train_wide``
    ``train_utterances`` sentences of the text sources whose words are among the ``top_words``
    most frequent, that share no 6-word run with any sentence of the base corpus (its train pool
    included, from which the natural and Kokoro extensions draw their held-out splits) or of the
    files listed in ``exclude`` (test splits drawn from elsewhere: the Kokoro wide-text draw's;
    the overlap rule of ``asr-ee lm --exclude``), each once while they last. Spoken by
    new draws of the base corpus's training voices (its engines, engine weights, voice counts and
    parameter ranges; its held-out base voices stay out), and with probability ``pseudo_prob``
    resynthesized as a random Praat pseudo-speaker on top.

``text/sentences_train_wide.txt`` lists what it speaks. Everything is determined by ``seed``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from pathlib import Path
from typing import Any

from asr_ee.config import ConfigError, from_dict
from asr_ee.data.errors import CorpusFileError, SynthesisError
from asr_ee.data.natural_corpus import RenderJob, base_sentences, build_beside_base
from asr_ee.data.offline_corpus import SPLITS, OfflineCorpusConfig, plan_utterances, sample_voices
from asr_ee.data.prepare import Stages, atomic_path
from asr_ee.data.tts import SynthesisJob, synthesize
from asr_ee.data.voices import PseudoSpeakerRanges, draw_pseudo_speaker

__all__ = ["WideCorpusConfig", "wide_pool", "plan_wide_corpus", "prepare_wide_corpus"]

_MAX_FAILED_FRACTION = 0.02


@dataclasses.dataclass
class WideCorpusConfig:
    """What the extension holds (see the module doc)."""

    base_dir: str = "/work/data/offline_tts_small"
    seed: int = 3
    top_words: int = 10000
    train_utterances: int = 12000
    exclude: list[str] = dataclasses.field(default_factory=list)  # sentence files, one per line
    pseudo_prob: float = 0.5
    pseudo: PseudoSpeakerRanges = dataclasses.field(default_factory=PseudoSpeakerRanges)
    num_jobs: int = 2

    def __post_init__(self) -> None:
        if self.train_utterances < 1:
            raise ConfigError(f"train_utterances must be >= 1, got {self.train_utterances}")
        if self.top_words < 1:
            raise ConfigError(f"top_words must be >= 1, got {self.top_words}")
        if not 0 <= self.pseudo_prob <= 1:
            raise ConfigError(f"pseudo_prob must be in [0, 1], got {self.pseudo_prob}")


def base_config(base_dir: Path) -> OfflineCorpusConfig:
    """The config the base corpus was built with (its ``config.json``)."""
    path = base_dir / "config.json"
    if not path.is_file():
        raise CorpusFileError(path, f"missing: build the base corpus first (asr-ee prepare offline --output-dir {base_dir})")
    return from_dict(OfflineCorpusConfig, json.loads(path.read_text()), where=str(path))


def wide_pool(cfg: WideCorpusConfig, base_cfg: OfflineCorpusConfig) -> list[str]:
    """Sentences within ``cfg.top_words`` words that share no 6-word run with a sentence of the base
    corpus or of the ``exclude`` files, in an order fixed by ``cfg.seed``."""
    from asr_ee.data.text_sources import lm_sentences, load_sentences

    base = Path(cfg.base_dir)
    taken = {s for split in SPLITS for s in base_sentences(base, split)}
    tests = list(taken)  # every held-out split of the natural and Kokoro extensions draws from these too
    for name in cfg.exclude:
        path = Path(name)
        if not path.is_file():
            raise CorpusFileError(path, "missing: an excluded sentence list (build the extension that writes it first)")
        tests += [line for line in path.read_text().splitlines() if line.strip()]
    corpus = load_sentences(cfg.top_words, min_words=base_cfg.min_words, max_words=base_cfg.max_words,
                            sources=base_cfg.text_sources)
    pool, _ = lm_sentences(tests, given=sorted(set(corpus.sentences) - taken))
    random.Random(f"{cfg.seed}-wide").shuffle(pool)
    if not pool:
        raise ConfigError(f"no sentence within the top {cfg.top_words} words is outside the base corpus (raise top_words)")
    return pool


def _raw_stage(cfg: WideCorpusConfig, jobs: list[SynthesisJob], output_dir: Path) -> None:
    """The engines speak every sentence (``audio/raw``); which succeeded goes to ``manifests/raw.json``."""
    shutil.rmtree(output_dir / "audio" / "raw", ignore_errors=True)
    results = synthesize(jobs, num_jobs=cfg.num_jobs, desc="synthesizing train_wide")
    failed = [r for r in results if r.error is not None]
    if len(failed) > _MAX_FAILED_FRACTION * len(jobs) + 2:
        raise SynthesisError(f"train_wide: {len(failed)} of {len(jobs)} utterances failed, e.g. "
                             f"{failed[0].utterance_id}: {failed[0].error}")
    with atomic_path(output_dir / "manifests" / "raw.json") as tmp:
        tmp.write_text(json.dumps(sorted(r.utterance_id for r in results if r.error is None)))


def plan_wide_corpus(cfg: WideCorpusConfig, output_dir: Path) -> dict[str, list[RenderJob]]:
    """The engines' jobs (spoken first, stage ``raw``), then the render jobs of ``train_wide``:
    every spoken utterance, a pseudo-speaker on top of some."""
    base_cfg = base_config(Path(cfg.base_dir))
    pool = wide_pool(cfg, base_cfg)
    voices = sample_voices(base_cfg, heldout=False, rng=random.Random(f"{cfg.seed}-voices"))
    raw = plan_utterances("raw", pool[:cfg.train_utterances], cfg.train_utterances, voices, base_cfg,
                          random.Random(f"{cfg.seed}-utterances"), output_dir / "audio")
    Stages(output_dir).run("raw", lambda: _raw_stage(cfg, raw, output_dir))
    spoken = set(json.loads((output_dir / "manifests" / "raw.json").read_text()))
    rng = random.Random(f"{cfg.seed}-pseudo")
    jobs = []
    for job in raw:
        speaker = draw_pseudo_speaker(cfg.pseudo, rng) if rng.random() < cfg.pseudo_prob else None
        if job.utterance_id not in spoken:  # drawn first all the same: a failure shifts no other speaker
            continue
        utt = job.utterance_id.replace("raw-", "train_wide-")
        jobs.append(RenderJob(utt, job.text, job.voice.id + (f"+{speaker.id}" if speaker else ""),
                              job.voice.engine, job.voice.voice,
                              str(output_dir / "audio" / "train_wide" / f"{utt}.flac"),
                              source=job.path, pseudo=speaker))
    return {"train_wide": jobs}


def prepare_wide_corpus(cfg: WideCorpusConfig, output_dir: str | Path) -> dict[str, Any]:
    """Build (or finish building) the extension in ``output_dir``; returns its summary."""
    output_dir = Path(output_dir).resolve()
    summary = build_beside_base("wide", cfg, output_dir, plan_wide_corpus, "train_wide")
    shutil.rmtree(output_dir / "audio" / "raw", ignore_errors=True)  # rendered into audio/train_wide
    return summary
