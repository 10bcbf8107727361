"""A speech corpus built offline from Debian text and TTS packages.

Sentences (:mod:`asr_ee.data.text_sources`) are split into disjoint ``train``/``dev``/``test``/
``test_heldout_voices`` sets. Training voices are sampled from every engine (espeak-ng accents x
variants x speed/pitch/word gap, flite voices x speed/F0, festival voices x speed/pitch); ``dev``
and ``test`` reuse training voices on unseen sentences, while ``test_heldout_voices`` uses only
voices that training never hears, built on whole base voices held out of training (an espeak
accent, espeak variants, a flite voice, a festival voice). Everything is determined by ``seed``.

Stages (each rerunnable, see :mod:`asr_ee.data.prepare`): ``text`` -> ``synth_<split>`` ->
``features_<split>`` -> ``noise`` -> ``tokenizer`` -> ``corpus.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.audio import AudioSource

from asr_ee.config import ConfigError, to_dict
from asr_ee.data.errors import SynthesisError
from asr_ee.data.prepare import (PrepareConfig, Stages, atomic_path, check_output_config,
                                 manifest_path, prepare_from_manifests, save_manifest)
from asr_ee.data.text_sources import load_sentences
from asr_ee.data.tts import (ENGINES, ESPEAK_ACCENTS, ESPEAK_VARIANTS, FESTIVAL_VOICES,
                             FLITE_VOICES, SAMPLE_RATE, SynthesisJob, SynthesisResult, Voice,
                             check_engine,
                             synthesize)

__all__ = ["SPLITS", "TRAIN_SPLIT", "HeldoutConfig", "VoiceRanges", "OfflineCorpusConfig",
           "sample_voices", "plan_utterances", "prepare_offline_corpus"]

log = logging.getLogger(__name__)
TRAIN_SPLIT = "train"
HELDOUT_SPLIT = "test_heldout_voices"
SPLITS = (TRAIN_SPLIT, "dev", "test", HELDOUT_SPLIT)
_FEMALE = {"slt", "cmu_us_slt_arctic_hts"}
_MAX_FAILED_FRACTION = 0.02


@dataclasses.dataclass
class HeldoutConfig:
    """Base voices that only ``test_heldout_voices`` uses (never heard in training)."""

    espeak_accents: list[str] = dataclasses.field(default_factory=lambda: ["en-gb-x-gbcwmd"])
    espeak_variants: list[str] = dataclasses.field(
        default_factory=lambda: ["m7", "f4", "Andrea", "klatt3", "travis", "grandma"])
    flite_voices: list[str] = dataclasses.field(default_factory=lambda: ["awb"])
    festival_voices: list[str] = dataclasses.field(default_factory=lambda: ["ked_diphone"])


@dataclasses.dataclass
class VoiceRanges:
    """Uniform ranges the per-voice parameters are drawn from."""

    espeak_speed: tuple[float, float] = (135.0, 215.0)   # words per minute
    espeak_pitch: tuple[float, float] = (20.0, 80.0)     # 0..99
    espeak_gap: tuple[float, float] = (0.0, 2.0)         # x 10 ms between words (rounded)
    stretch: tuple[float, float] = (0.85, 1.25)          # flite/festival duration stretch
    male_f0: tuple[float, float] = (80.0, 135.0)         # Hz
    female_f0: tuple[float, float] = (150.0, 230.0)      # Hz
    hts_semitones: tuple[float, float] = (-3.0, 3.0)     # festival HTS pitch shift


@dataclasses.dataclass
class OfflineCorpusConfig:
    """Everything that determines an offline TTS corpus.

    ``engine_weights`` is each engine's share of the utterances of every split; ``train_voices``
    and ``heldout_voices`` are how many distinct voices are drawn per engine.
    """

    seed: int = 0
    top_words: int = 3000
    min_words: int = 4
    max_words: int = 20
    text_sources: list[str] = dataclasses.field(default_factory=lambda: ["fortunes", "wordnet"])
    train_utterances: int = 7000
    dev_utterances: int = 350
    test_utterances: int = 350
    heldout_utterances: int = 350
    engines: list[str] = dataclasses.field(default_factory=lambda: list(ENGINES))
    engine_weights: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"flite": 0.45, "espeak": 0.4, "festival": 0.15})
    train_voices: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"espeak": 300, "flite": 60, "festival": 30})
    heldout_voices: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"espeak": 30, "flite": 8, "festival": 6})
    heldout: HeldoutConfig = dataclasses.field(default_factory=HeldoutConfig)
    ranges: VoiceRanges = dataclasses.field(default_factory=VoiceRanges)
    prepare: PrepareConfig = dataclasses.field(default_factory=PrepareConfig)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.engines) - set(ENGINES))
        if unknown or not self.engines:
            raise ConfigError(f"engines: {self.engines} must be a non-empty subset of {list(ENGINES)}")
        for name in ("engine_weights", "train_voices", "heldout_voices"):
            missing = sorted(set(self.engines) - set(getattr(self, name)))
            if missing:
                raise ConfigError(f"{name}: no entry for engine(s) {missing}")
        if min(self.engine_weights[e] for e in self.engines) <= 0:
            raise ConfigError(f"engine_weights must be positive: {self.engine_weights}")
        if self.min_words < 1 or self.max_words < self.min_words:
            raise ConfigError(f"need 1 <= min_words <= max_words, got {self.min_words}, {self.max_words}")

    def split_sizes(self) -> dict[str, int]:
        return {TRAIN_SPLIT: self.train_utterances, "dev": self.dev_utterances,
                "test": self.test_utterances, HELDOUT_SPLIT: self.heldout_utterances}


def _base_voices(cfg: OfflineCorpusConfig, heldout: bool) -> dict[str, list[str]]:
    """Base voices per engine: training's (held-out ones removed) or the held-out ones."""
    held = cfg.heldout
    if heldout:
        train_accents = [a for a in ESPEAK_ACCENTS if a not in held.espeak_accents]
        espeak = ([f"{a}+{v}" for a in held.espeak_accents for v in ("",) + ESPEAK_VARIANTS]
                  + [f"{a}+{v}" for a in train_accents for v in held.espeak_variants])
        base = {"espeak": espeak, "flite": list(held.flite_voices),
                "festival": list(held.festival_voices)}
    else:
        accents = [a for a in ESPEAK_ACCENTS if a not in held.espeak_accents]
        variants = [v for v in ("",) + ESPEAK_VARIANTS if v not in held.espeak_variants]
        base = {"espeak": [f"{a}+{v}" for a in accents for v in variants],
                "flite": [v for v in FLITE_VOICES if v not in held.flite_voices],
                "festival": [v for v in FESTIVAL_VOICES if v not in held.festival_voices]}
    return {e: [v.rstrip("+") for v in base[e]] for e in cfg.engines}


def _draw_voice(engine: str, base: str, ranges: VoiceRanges, rng: random.Random) -> Voice:
    if engine == "espeak":
        return Voice.make(engine, base, speed=round(rng.uniform(*ranges.espeak_speed)),
                          pitch=round(rng.uniform(*ranges.espeak_pitch)),
                          gap=round(rng.uniform(*ranges.espeak_gap)))
    stretch = rng.uniform(*ranges.stretch)
    if base == "cmu_us_slt_arctic_hts":
        return Voice.make(engine, base, stretch=stretch, semitones=rng.uniform(*ranges.hts_semitones))
    f0 = rng.uniform(*(ranges.female_f0 if base in _FEMALE else ranges.male_f0))
    return Voice.make(engine, base, stretch=stretch, f0=round(f0))


def sample_voices(cfg: OfflineCorpusConfig, heldout: bool, rng: random.Random) -> dict[str, list[Voice]]:
    """Draw ``cfg.train_voices`` (or ``heldout_voices``) distinct voices per engine.

    Base voices are used round-robin in a shuffled order, so every base voice appears before any
    repeats; parameters are drawn from ``cfg.ranges``.
    """
    counts = cfg.heldout_voices if heldout else cfg.train_voices
    pools: dict[str, list[Voice]] = {}
    for engine, bases in _base_voices(cfg, heldout).items():
        if not bases:
            continue
        order = bases[:]
        rng.shuffle(order)
        voices: dict[str, Voice] = {}
        for i in range(counts[engine] * 3):
            if len(voices) >= counts[engine]:
                break
            voice = _draw_voice(engine, order[i % len(order)], cfg.ranges, rng)
            voices.setdefault(voice.id, voice)
        pools[engine] = list(voices.values())
    if not any(pools.values()):
        raise ConfigError("no voices to sample: every base voice of every engine is held out")
    return pools


def plan_utterances(split: str, sentences: list[str], count: int, pools: dict[str, list[Voice]],
                    cfg: OfflineCorpusConfig, rng: random.Random, audio_dir: Path) -> list[SynthesisJob]:
    """``count`` jobs: sentences cycled in shuffled order, engine by weight, voice uniformly."""
    engines = [e for e in cfg.engines if pools.get(e)]
    weights = [cfg.engine_weights[e] for e in engines]
    order = sentences[:]
    jobs = []
    for i in range(count):
        if i % len(order) == 0:
            rng.shuffle(order)
        voice = rng.choice(pools[rng.choices(engines, weights)[0]])
        utt_id = f"{split}-{i:06d}"
        jobs.append(SynthesisJob(utt_id, order[i % len(order)], voice,
                                 str(audio_dir / split / f"{utt_id}.flac")))
    return jobs


def _text_stage(cfg: OfflineCorpusConfig, output_dir: Path) -> None:
    corpus = load_sentences(cfg.top_words, min_words=cfg.min_words, max_words=cfg.max_words,
                            sources=cfg.text_sources)
    sentences = corpus.sentences[:]
    random.Random(cfg.seed).shuffle(sentences)
    sizes = cfg.split_sizes()
    evals = [s for s in SPLITS if s != TRAIN_SPLIT]
    needed = sum(sizes[s] for s in evals)
    if len(sentences) < needed + 1:
        raise ConfigError(f"only {len(sentences)} sentences within the top {cfg.top_words} words; "
                          f"the evaluation splits alone need {needed} (raise top_words)")
    by_split: dict[str, list[str]] = {}
    start = 0
    for split in evals:  # evaluation sentences are unique per utterance and disjoint
        by_split[split] = sentences[start:start + sizes[split]]
        start += sizes[split]
    by_split[TRAIN_SPLIT] = sentences[start:]
    text_dir = output_dir / "text"
    for split, lines in by_split.items():
        with atomic_path(text_dir / f"sentences_{split}.txt") as tmp:
            tmp.write_text("\n".join(lines) + "\n")
    with atomic_path(text_dir / "stats.json") as tmp:
        tmp.write_text(json.dumps(corpus.summary(), indent=2))
    log.info("text: %s", corpus.summary())


def _read_sentences(output_dir: Path, split: str) -> list[str]:
    return (output_dir / "text" / f"sentences_{split}.txt").read_text().splitlines()


def _manifests_from_results(jobs: list[SynthesisJob], results: list[SynthesisResult]
                            ) -> tuple[RecordingSet, SupervisionSet]:
    recordings, supervisions = [], []
    for job, res in zip(jobs, results):
        if res.error is not None:
            continue
        duration = res.num_samples / SAMPLE_RATE
        recordings.append(Recording(
            id=job.utterance_id, sources=[AudioSource(type="file", channels=[0], source=res.path)],
            sampling_rate=SAMPLE_RATE, num_samples=res.num_samples, duration=duration))
        supervisions.append(SupervisionSegment(
            id=job.utterance_id, recording_id=job.utterance_id, start=0.0, duration=duration,
            channel=0, text=job.text, language="English", speaker=job.voice.id,
            custom={"engine": job.voice.engine, "base_voice": job.voice.voice}))
    return RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions)


def _synth_stage(split: str, jobs: list[SynthesisJob], cfg: OfflineCorpusConfig,
                 output_dir: Path) -> None:
    shutil.rmtree(output_dir / "audio" / split, ignore_errors=True)  # redo cleanly
    results = synthesize(jobs, num_jobs=cfg.prepare.num_jobs, desc=f"synthesizing {split}")
    failed = [r for r in results if r.error is not None]
    if len(failed) > _MAX_FAILED_FRACTION * len(jobs) + 2:
        raise SynthesisError(f"{split}: {len(failed)} of {len(jobs)} utterances failed, e.g. "
                             f"{failed[0].utterance_id}: {failed[0].error}")
    recordings, supervisions = _manifests_from_results(jobs, results)
    save_manifest(supervisions, manifest_path(output_dir, "supervisions", split))
    save_manifest(recordings, manifest_path(output_dir, "recordings", split))
    stats = {"utterances": len(recordings), "failed": len(failed),
             "failures": [f"{r.utterance_id}: {r.error}" for r in failed[:20]]}
    with atomic_path(output_dir / "manifests" / f"synthesis_{split}.json") as tmp:
        tmp.write_text(json.dumps(stats, indent=2))


def _plan(cfg: OfflineCorpusConfig, output_dir: Path) -> dict[str, list[SynthesisJob]]:
    """The synthesis jobs of every split (deterministic from ``cfg.seed``)."""
    rng = random.Random(cfg.seed + 1)
    train_pools = sample_voices(cfg, heldout=False, rng=rng)
    heldout_pools = sample_voices(cfg, heldout=True, rng=rng)
    train_ids = {v.id for pool in train_pools.values() for v in pool}
    heldout_ids = {v.id for pool in heldout_pools.values() for v in pool}
    assert not train_ids & heldout_ids, "a held-out voice is also a training voice"
    plans = {}
    for split in SPLITS:
        pools = heldout_pools if split == HELDOUT_SPLIT else train_pools
        plans[split] = plan_utterances(split, _read_sentences(output_dir, split),
                                       cfg.split_sizes()[split], pools, cfg,
                                       random.Random(f"{cfg.seed}-{split}"), output_dir / "audio")
    return plans


def _voice_summary(plans: dict[str, list[SynthesisJob]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for split, jobs in plans.items():
        per_engine: dict[str, dict[str, int]] = {}
        for job in jobs:
            entry = per_engine.setdefault(job.voice.engine, {"utterances": 0})
            entry["utterances"] += 1
        for engine in per_engine:
            per_engine[engine]["voices"] = len({j.voice.id for j in jobs if j.voice.engine == engine})
            per_engine[engine]["base_voices"] = len({j.voice.voice for j in jobs if j.voice.engine == engine})
        summary[split] = per_engine
    return summary


def prepare_offline_corpus(cfg: OfflineCorpusConfig, output_dir: str | Path) -> dict[str, CutSet]:
    """Build (or finish building) the offline TTS corpus in ``output_dir``.

    Returns:
        Cuts with features for ``train`` (with speed-perturbed copies), ``dev``, ``test``,
        ``test_heldout_voices`` and ``noise``.
    """
    output_dir = Path(output_dir).resolve()  # manifests hold absolute paths: usable from any cwd
    for engine in cfg.engines:
        for voice in FESTIVAL_VOICES if engine == "festival" else [None]:
            check_engine(engine, voice)
    check_output_config(output_dir, to_dict(cfg))
    stages = Stages(output_dir)
    stages.run("text", lambda: _text_stage(cfg, output_dir))
    plans = _plan(cfg, output_dir)
    for split in SPLITS:
        stages.run(f"synth_{split}", lambda s=split: _synth_stage(s, plans[s], cfg, output_dir))
    extra = {"corpus": "offline_tts", "seed": cfg.seed,
             "text": json.loads((output_dir / "text" / "stats.json").read_text()),
             "voices": _voice_summary(plans),
             "synthesis": {s: json.loads((output_dir / "manifests" / f"synthesis_{s}.json").read_text())
                           for s in SPLITS}}
    return prepare_from_manifests(output_dir, stages, cfg.prepare, SPLITS, [TRAIN_SPLIT],
                                  extra_summary=extra)
