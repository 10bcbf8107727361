"""Speaker variety on top of an offline TTS corpus, and an unseen natural voice to test on.

Built beside a finished offline corpus (``base_dir``, :mod:`asr_ee.data.offline_corpus`), whose
tokenizer, noise and splits it leaves untouched. Splits, each ``cuts_<split>.jsonl.gz`` with fbank:

``natural``
    The Piper voice (:mod:`asr_ee.data.voices`, trained on recorded speech) at its default
    settings, speaking sentences that no split of the base corpus holds and that its training
    never synthesized: the unseen natural voice, for a model that never hears Piper.
``train_pseudo``
    ``pseudo_copies`` copies of every base training utterance, each resynthesized as a random
    Praat pseudo-speaker (formants, pitch median and range, tempo): many speakers from the base's
    390 voices.
``train_piper``
    The Piper voice on base training sentences, with random Piper sampling settings, and with
    probability ``piper_pseudo_prob`` as a random pseudo-speaker: one natural voice made into
    many speakers, for a model that may hear it (model B in the README).

``text/sentences_natural.txt`` lists the natural split's sentences so that a language model can
leave them out (``asr-ee lm --exclude``). Stages leave markers as every recipe's do.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import dataclasses
import json
import logging
import os
import random
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf
from lhotse import RecordingSet, SupervisionSet
from lhotse.audio import AudioSource, Recording
from lhotse.supervision import SupervisionSegment
from tqdm.auto import tqdm

from asr_ee.config import ConfigError, to_dict
from asr_ee.data.errors import CorpusFileError, SynthesisError
from asr_ee.data.kokoro_voice import KokoroSettings, synthesize_kokoro
from asr_ee.data.native_voices import HibariSettings, PicoSettings, synthesize_hibari, synthesize_pico
from asr_ee.data.prepare import (PrepareConfig, Stages, atomic_path, check_output_config, cuts_path,
                                 features_stage, load_cuts, manifest_path, save_manifest, split_stats)
from asr_ee.data.voices import (PiperRanges, PiperSettings, PseudoSpeaker, PseudoSpeakerRanges,
                                draw_piper_settings, draw_pseudo_speaker, synthesize_piper)
from asr_ee.data.workers import process_pool

__all__ = ["NaturalCorpusConfig", "RenderJob", "base_sentences", "plan_natural_corpus", "prepare_natural_corpus",
           "unused_sentences", "build_beside_base"]

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000


@dataclasses.dataclass
class NaturalCorpusConfig:
    """What the extension holds (see the module doc); everything is determined by ``seed``."""

    base_dir: str = "/work/data/offline_tts_small"
    seed: int = 0
    natural_utterances: int = 350
    pseudo_copies: int = 1
    piper_train_utterances: int = 3000
    piper_pseudo_prob: float = 0.85
    pseudo: PseudoSpeakerRanges = dataclasses.field(default_factory=PseudoSpeakerRanges)
    piper: PiperRanges = dataclasses.field(default_factory=PiperRanges)
    num_jobs: int = 2

    def __post_init__(self) -> None:
        if min(self.natural_utterances, self.pseudo_copies, self.piper_train_utterances) < 0:
            raise ConfigError("natural_utterances, pseudo_copies and piper_train_utterances must be >= 0")
        if not 0 <= self.piper_pseudo_prob <= 1:
            raise ConfigError(f"piper_pseudo_prob must be in [0, 1], got {self.piper_pseudo_prob}")


@dataclasses.dataclass(frozen=True)
class RenderJob:
    """One utterance: Piper, Kokoro, Hibari or Pico speaking ``text`` (one of ``piper``, ``kokoro``,
    ``hibari``, ``pico`` set) or a base recording (``source``), then optionally resynthesized as
    ``pseudo``; written to ``path`` as 16 kHz FLAC."""

    utterance_id: str
    text: str
    speaker: str
    engine: str
    base_voice: str
    path: str
    piper: PiperSettings | None = None
    source: str | None = None
    kokoro: KokoroSettings | None = None
    pseudo: PseudoSpeaker | None = None
    hibari: HibariSettings | None = None
    pico: PicoSettings | None = None


def _level(utterance_id: str) -> float:
    """A deterministic peak level in [0.3, 0.95] per utterance (as the base corpus does)."""
    return 0.3 + 0.65 * (zlib.crc32(utterance_id.encode()) % 1000) / 999


def _render(job: RenderJob) -> tuple[str, int, str | None]:
    """Render one job; returns ``(utterance_id, num_samples, error)``."""
    import torch
    import torchaudio.functional as AF

    try:
        if job.piper is not None:
            audio, rate = synthesize_piper(job.text, job.piper)
        elif job.kokoro is not None:
            audio, rate = synthesize_kokoro(job.text, job.kokoro)
        elif job.hibari is not None:
            audio, rate = synthesize_hibari(job.text, job.hibari)
        elif job.pico is not None:
            audio, rate = synthesize_pico(job.text, job.pico)
        else:
            audio, rate = sf.read(job.source, dtype="float32")
        if job.pseudo is not None and audio.size:
            audio = job.pseudo.apply(audio, rate)
        if rate != SAMPLE_RATE:
            audio = AF.resample(torch.from_numpy(np.ascontiguousarray(audio)), rate, SAMPLE_RATE).numpy()
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if audio.size < 0.2 * SAMPLE_RATE or peak < 1e-4 or not np.isfinite(peak):
            return job.utterance_id, 0, "empty, silent or non-finite audio"
        final = Path(job.path)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".tmp_{final.name}")
        sf.write(str(tmp), audio * (_level(job.utterance_id) / peak), SAMPLE_RATE, format="FLAC",
                 subtype="PCM_16")
        os.replace(tmp, final)
        return job.utterance_id, int(audio.shape[0]), None
    except Exception as e:  # one bad utterance must not end a build of thousands
        return job.utterance_id, 0, f"{type(e).__name__}: {e}"


def _render_in_worker(job: RenderJob, progress_dir: str) -> tuple[str, int, str | None]:
    """:func:`_render` in a pool worker, which first notes the job and its start in a file named
    after its pid, so the watchdog in :func:`_render_all` can tell which job a hung worker holds."""
    with open(os.path.join(progress_dir, str(os.getpid())), "w") as f:
        f.write(f"{job.utterance_id} {time.monotonic()}")
    return _render(job)


def _hung_jobs(progress_dir: Path, timeout_s: float) -> list[str]:
    hung = []
    for path in progress_dir.iterdir():
        try:
            uid, started = path.read_text().split()
        except (OSError, ValueError):
            continue
        if time.monotonic() - float(started) > timeout_s:
            hung.append(uid)
    return hung


def _render_all(jobs: list[RenderJob], num_jobs: int, desc: str,
                timeout_s: float = 120.0) -> list[tuple[str, int, str | None]]:
    """Render ``jobs`` in ``num_jobs`` processes (in this one if ``num_jobs <= 1``).

    A job still running after ``timeout_s`` (Praat's resynthesis has been seen to spin forever on
    rare inputs) is recorded as failed: its pool is killed and the unfinished jobs go to a new one.
    """
    results: dict[str, tuple[str, int, str | None]] = {}
    with tqdm(total=len(jobs), desc=desc, unit="utt") as bar:
        if num_jobs <= 1:
            for job in jobs:
                results[job.utterance_id] = _render(job)
                bar.update(1)
            return [results[j.utterance_id] for j in jobs]
        with tempfile.TemporaryDirectory(prefix="asr_ee_render_") as tmp:
            progress_dir = Path(tmp)
            while len(results) < len(jobs):
                pending = [j for j in jobs if j.utterance_id not in results]
                pool = process_pool(num_jobs)
                try:
                    futures = {pool.submit(_render_in_worker, j, tmp): j for j in pending}
                    remaining = set(futures)
                    while remaining:
                        done, remaining = concurrent.futures.wait(remaining, timeout=5.0)
                        for future in done:
                            try:
                                r = future.result()
                            except concurrent.futures.process.BrokenProcessPool:
                                continue  # killed below; the job goes to the next pool
                            results[r[0]] = r
                            bar.update(1)
                        hung = [uid for uid in _hung_jobs(progress_dir, timeout_s) if uid not in results]
                        if hung:
                            for uid in hung:
                                log.warning("%s: %s still running after %.0f s; recorded as failed",
                                            desc, uid, timeout_s)
                                results[uid] = (uid, 0, f"timed out after {timeout_s:.0f} s")
                                bar.update(1)
                            for process in list(pool._processes.values()):  # the only way to stop a task
                                process.kill()
                            break
                finally:
                    pool.shutdown(wait=False, cancel_futures=True)
                    for path in progress_dir.iterdir():
                        path.unlink(missing_ok=True)
    return [results[j.utterance_id] for j in jobs]


def base_sentences(base: Path, split: str) -> list[str]:
    """The sentences of one split of the base corpus (``text/sentences_<split>.txt``; for ``train``
    the whole pool training drew from)."""
    path = base / "text" / f"sentences_{split}.txt"
    if not path.is_file():
        raise CorpusFileError(path, f"missing: build the base corpus first "
                                    f"(asr-ee prepare offline --output-dir {base})")
    return path.read_text().splitlines()


def unused_sentences(base: Path, seed: int) -> list[str]:
    """The base corpus's sentences that no split of it speaks, in a shuffled order fixed by
    ``seed``: the natural split takes the first ``natural_utterances`` of them."""
    train_sups = SupervisionSet.from_file(manifest_path(base, "supervisions", "train"))
    unused = sorted(set(base_sentences(base, "train")) - {s.text for s in train_sups})
    evaluation = {s for split in ("dev", "test", "test_heldout_voices") for s in base_sentences(base, split)}
    unused = [s for s in unused if s not in evaluation]
    random.Random(f"{seed}-natural").shuffle(unused)
    return unused


def plan_natural_corpus(cfg: NaturalCorpusConfig, output_dir: Path) -> dict[str, list[RenderJob]]:
    """The jobs of every split, deterministic from ``cfg.seed`` and the base corpus."""
    base = Path(cfg.base_dir)
    train_sups = SupervisionSet.from_file(manifest_path(base, "supervisions", "train"))
    train_audio = {r.id: r.sources[0].source
                   for r in RecordingSet.from_file(manifest_path(base, "recordings", "train"))}
    used = {s.text for s in train_sups}
    unused = unused_sentences(base, cfg.seed)
    if len(unused) < cfg.natural_utterances:
        raise ConfigError(f"only {len(unused)} base sentences are unused by training; "
                          f"natural_utterances={cfg.natural_utterances} is too many")
    audio = output_dir / "audio"
    plans: dict[str, list[RenderJob]] = {"natural": [
        RenderJob(f"natural-{i:06d}", text, "piper-joe", "piper", "joe",
                  str(audio / "natural" / f"natural-{i:06d}.flac"), piper=PiperSettings())
        for i, text in enumerate(unused[:cfg.natural_utterances])]}
    rng = random.Random(f"{cfg.seed}-pseudo")
    pseudo = []
    for copy in range(cfg.pseudo_copies):
        for sup in train_sups:
            speaker = draw_pseudo_speaker(cfg.pseudo, rng)
            utt = f"{sup.id}_ps{copy}"
            pseudo.append(RenderJob(utt, sup.text, f"{sup.speaker}+{speaker.id}", sup.custom["engine"],
                                    sup.custom["base_voice"], str(audio / "train_pseudo" / f"{utt}.flac"),
                                    source=train_audio[sup.recording_id], pseudo=speaker))
    plans["train_pseudo"] = pseudo
    rng = random.Random(f"{cfg.seed}-piper")
    texts = sorted(used)
    piper = []
    for i in range(cfg.piper_train_utterances):
        settings = draw_piper_settings(cfg.piper, rng)
        speaker = draw_pseudo_speaker(cfg.pseudo, rng) if rng.random() < cfg.piper_pseudo_prob else None
        utt = f"train_piper-{i:06d}"
        name = f"piper-joe_{settings.id}" + (f"+{speaker.id}" if speaker else "")
        piper.append(RenderJob(utt, rng.choice(texts), name, "piper", "joe",
                               str(audio / "train_piper" / f"{utt}.flac"), piper=settings, pseudo=speaker))
    plans["train_piper"] = piper
    return plans


def _synth_stage(split: str, jobs: list[RenderJob], cfg: NaturalCorpusConfig, output_dir: Path) -> None:
    results = _render_all(jobs, cfg.num_jobs, f"rendering {split}")
    failed = [r for r in results if r[2] is not None]
    if len(failed) > 0.02 * len(jobs) + 2:
        raise SynthesisError(f"{split}: {len(failed)} of {len(jobs)} utterances failed, e.g. "
                             f"{failed[0][0]}: {failed[0][2]}")
    recordings, supervisions = [], []
    for job, (_, samples, error) in zip(jobs, results):
        if error is not None:
            continue
        duration = samples / SAMPLE_RATE
        recordings.append(Recording(id=job.utterance_id, sampling_rate=SAMPLE_RATE, num_samples=samples,
                                    duration=duration,
                                    sources=[AudioSource(type="file", channels=[0], source=job.path)]))
        supervisions.append(SupervisionSegment(
            id=job.utterance_id, recording_id=job.utterance_id, start=0.0, duration=duration, channel=0,
            text=job.text, language="English", speaker=job.speaker,
            custom={"engine": job.engine, "base_voice": job.base_voice}))
    save_manifest(SupervisionSet.from_segments(supervisions), manifest_path(output_dir, "supervisions", split))
    save_manifest(RecordingSet.from_recordings(recordings), manifest_path(output_dir, "recordings", split))
    with atomic_path(output_dir / "manifests" / f"synthesis_{split}.json") as tmp:
        tmp.write_text(json.dumps({"utterances": len(recordings), "failed": len(failed),
                                   "failures": [f"{u}: {e}" for u, _, e in failed[:20]]}, indent=2))


def build_beside_base(name: str, cfg: Any, output_dir: str | Path,
                      plan: Callable[[Any, Path], dict[str, list[RenderJob]]], listed_split: str) -> dict[str, Any]:
    """Build (or finish building) an extension of an offline corpus (``cfg.base_dir``) in
    ``output_dir``: the splits ``plan(cfg, output_dir)`` returns, rendered and given fbank in
    order, ``text/sentences_<listed_split>.txt`` (that test split's sentences, for ``asr-ee lm
    --exclude``) and ``corpus.json``; returns the summary. Shared by the natural and Kokoro corpora."""
    output_dir = Path(output_dir).resolve()
    base = Path(cfg.base_dir).resolve()
    if not all((base / f".done_synth_{split}").is_file()
               for split in ("train", "dev", "test", "test_heldout_voices")):
        raise CorpusFileError(base, "is not an offline corpus with its splits synthesized: run "
                                    f"asr-ee prepare offline --output-dir {base} first")
    check_output_config(output_dir, to_dict(cfg))
    stages = Stages(output_dir)
    plans = plan(cfg, output_dir)
    listed = output_dir / "text" / f"sentences_{listed_split}.txt"
    if not listed.is_file():
        listed.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(listed) as tmp:
            tmp.write_text("".join(j.text + "\n" for j in plans[listed_split]))
    prepare = PrepareConfig(num_jobs=cfg.num_jobs, speed_factors=[])
    splits = [s for s, jobs in plans.items() if jobs]
    for split in splits:
        stages.run(f"synth_{split}", lambda s=split: _synth_stage(s, plans[s], cfg, output_dir))
        stages.run(f"features_{split}", features_stage(output_dir, split, prepare, train=False))
    summary = {"corpus": name, "base_dir": str(base),
               "splits": {s: split_stats(load_cuts(output_dir, s)) for s in splits},
               "build_wall_seconds": round(stages.total_seconds(), 1)}
    with atomic_path(output_dir / "corpus.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary


def prepare_natural_corpus(cfg: NaturalCorpusConfig, output_dir: str | Path) -> dict[str, Any]:
    """Build (or finish building) the extension in ``output_dir``; returns its summary."""
    return build_beside_base("natural", cfg, output_dir, plan_natural_corpus, "natural")
