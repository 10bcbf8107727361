"""Stages shared by every corpus recipe (offline TTS, LibriSpeech, TED-LIUM).

A recipe first writes normalized recording/supervision manifests per split; the shared stages
then build the layout the trainer reads::

    <output_dir>/cuts_<split>.jsonl.gz     cuts with 80-dim fbank features (train splits also hold
                                           speed-perturbed copies, ids suffixed ``_sp0.9``...)
    <output_dir>/cuts_noise.jsonl.gz       white/pink/brown noise cuts, with features
    <output_dir>/tokenizer/bpe.model       SentencePiece model, id 0 = CTC blank
    <output_dir>/corpus.json               summary: hours, utterances, speakers, build time, disk

Every stage leaves ``<output_dir>/.done_<stage>`` when it has finished, and a rerun skips it.
Files appear under temporary names and are renamed when complete, and a stage that did not finish
is redone from scratch, so an interrupted build never looks finished.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from lhotse import CutSet, LilcomChunkyWriter, Recording, RecordingSet, SupervisionSet, validate
from lhotse.manipulation import combine
from tqdm.auto import tqdm

from asr_ee.config import ConfigError
from asr_ee.data.errors import CorpusFileError, MissingPackageError
from asr_ee.data.tokenizer import train_tokenizer
from asr_ee.data.workers import process_pool
from asr_ee.features import NUM_MEL_BINS, SAMPLE_RATE, make_fbank

__all__ = ["NoiseConfig", "PrepareConfig", "Stages", "atomic_path", "save_manifest",
           "check_output_config", "manifest_path", "cuts_path", "speed_perturb",
           "compute_features", "build_noise", "features_stage", "split_stats", "build_tokenizer", "write_summary",
           "prepare_from_manifests", "load_cuts"]

log = logging.getLogger(__name__)
NOISE_KINDS = ("white", "pink", "brown")


@dataclasses.dataclass
class NoiseConfig:
    """Noise generated with sox, cut into windows, with features for feature-domain mixing."""

    kinds: list[str] = dataclasses.field(default_factory=lambda: list(NOISE_KINDS))
    seconds_per_kind: float = 120.0
    window_seconds: float = 10.0
    volume: float = 0.5

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(NOISE_KINDS))
        if unknown:
            raise ConfigError(f"noise.kinds: unknown {unknown}; choose from {list(NOISE_KINDS)}")
        if self.seconds_per_kind <= 0 or self.window_seconds <= 0:
            raise ConfigError("noise.seconds_per_kind and noise.window_seconds must be positive")


@dataclasses.dataclass
class PrepareConfig:
    """Settings of the shared stages (features, speed perturbation, noise, tokenizer)."""

    num_jobs: int = 2
    speed_factors: list[float] = dataclasses.field(default_factory=lambda: [0.9, 1.1])
    tokenizer_vocab_size: int = 256
    tokenizer_type: str = "bpe"
    noise: NoiseConfig = dataclasses.field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        if self.num_jobs < 1:
            raise ConfigError(f"prepare.num_jobs must be >= 1, got {self.num_jobs}")
        if any(f <= 0 or f == 1.0 for f in self.speed_factors):
            raise ConfigError(f"prepare.speed_factors must be positive and != 1: {self.speed_factors}")
        if self.tokenizer_type not in ("bpe", "unigram", "char"):
            raise ConfigError(f"prepare.tokenizer_type: {self.tokenizer_type!r} is not bpe/unigram/char")


class Stages:
    """Runs each named stage once per output directory.

    A finished stage writes ``.done_<name>`` holding its wall time; ``run`` skips a stage whose
    marker exists. A stage that raised leaves no marker, so the next run redoes it.
    """

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.ran: list[str] = []
        self.skipped: list[str] = []

    def marker(self, name: str) -> Path:
        return self.output_dir / f".done_{name}"

    def done(self, name: str) -> bool:
        return self.marker(name).is_file()

    def run(self, name: str, stage: Callable[[], None]) -> bool:
        """Run ``stage`` unless it already finished; returns whether it ran."""
        if self.done(name):
            log.info("stage %s: already done, skipping", name)
            self.skipped.append(name)
            return False
        log.info("stage %s: running", name)
        start = time.time()
        stage()
        with atomic_path(self.marker(name)) as tmp:
            tmp.write_text(json.dumps({"seconds": round(time.time() - start, 3),
                                       "finished": time.strftime("%Y-%m-%d %H:%M:%S")}))
        self.ran.append(name)
        return True

    def total_seconds(self) -> float:
        """Wall time of all finished stages (over every run that built this directory)."""
        return sum(json.loads(p.read_text())["seconds"] for p in self.output_dir.glob(".done_*"))


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``final`` (same suffixes); rename it to ``final`` on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp_{final.name}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_manifest(manifest: Any, path: Path) -> None:
    """Write a lhotse manifest (``.jsonl.gz``) atomically."""
    with atomic_path(path) as tmp:
        manifest.to_file(tmp)


def check_output_config(output_dir: Path, config: dict[str, Any]) -> None:
    """Record the config in ``output_dir/config.json``; refuse to resume a different config."""
    path = Path(output_dir) / "config.json"
    text = json.dumps(config, indent=2, sort_keys=True)
    if path.is_file() and json.loads(path.read_text()) != json.loads(text):
        raise ConfigError(f"{output_dir} was built with a different config (see {path}); "
                          "use another --output-dir or delete that directory")
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def manifest_path(output_dir: Path, kind: str, split: str) -> Path:
    return Path(output_dir) / "manifests" / f"{kind}_{split}.jsonl.gz"


def cuts_path(output_dir: Path, split: str) -> Path:
    return Path(output_dir) / f"cuts_{split}.jsonl.gz"


def load_cuts(output_dir: Path, split: str) -> CutSet:
    return CutSet.from_file(cuts_path(output_dir, split))


def speed_perturb(cuts: CutSet, factors: Sequence[float]) -> CutSet:
    """``cuts`` plus one speed-perturbed copy per factor (ids get ``_sp<factor>``)."""
    return combine([cuts] + [cuts.perturb_speed(f) for f in factors])


def _extract_shard(cuts: CutSet, storage_path: str) -> CutSet:
    return cuts.compute_and_store_features(
        extractor=make_fbank(), storage_path=storage_path, num_jobs=1,
        storage_type=LilcomChunkyWriter, progress_bar=False).to_eager()


def compute_features(cuts: CutSet, storage_dir: Path, *, num_jobs: int, desc: str,
                     shard_size: int = 200) -> CutSet:
    """80-dim fbank (``make_fbank()``) for every cut, stored with ``LilcomChunkyWriter``.

    The cuts are processed in shards over ``num_jobs`` processes. Any cut whose audio cannot be
    read is an error naming its file (lhotse alone would drop it silently).
    """
    storage_dir = Path(storage_dir)
    shutil.rmtree(storage_dir, ignore_errors=True)
    storage_dir.mkdir(parents=True)
    cuts = cuts.to_eager()
    shards = cuts.split(num_splits=max(1, -(-len(cuts) // shard_size)))
    paths = [str(storage_dir / f"feats-{i:04d}") for i in range(len(shards))]
    done: list[CutSet] = []
    with tqdm(total=len(cuts), desc=desc, unit="cut") as bar:
        if num_jobs == 1:
            for shard, path in zip(shards, paths):
                done.append(_extract_shard(shard, path))
                bar.update(len(shard))
        else:
            with process_pool(num_jobs) as pool:
                futures = {pool.submit(_extract_shard, shard, path): shard
                           for shard, path in zip(shards, paths)}
                for future in concurrent.futures.as_completed(futures):
                    done.append(future.result())
                    bar.update(len(futures[future]))
    with_feats = combine(done).to_eager()
    missing = sorted(set(cuts.ids) - set(with_feats.ids))
    if missing:
        cut = cuts[missing[0]]
        sources = [s.source for s in cut.recording.sources] if cut.has_recording else []
        raise CorpusFileError(sources[0] if sources else missing[0],
                              f"audio could not be read for {len(missing)} cut(s), e.g. {missing[0]}")
    return with_feats.sort_like(cuts)


def _check_features(cuts: CutSet) -> None:
    validate(cuts, read_data=False)
    for cut in cuts:
        if cut.num_features != NUM_MEL_BINS:
            raise AssertionError(f"{cut.id}: {cut.num_features} feature dims, not {NUM_MEL_BINS}")


def build_noise(output_dir: Path, cfg: NoiseConfig, num_jobs: int) -> CutSet:
    """Generate noise with sox into ``noise/<kind>.flac`` and store its cuts with features."""
    if shutil.which("sox") is None:
        raise MissingPackageError("sox (used to generate noise)", "sox")
    noise_dir = Path(output_dir) / "noise"
    noise_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in cfg.kinds:
        path = noise_dir / f"{kind}.flac"
        with atomic_path(path) as tmp:
            subprocess.run(["sox", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(tmp),
                            "synth", str(cfg.seconds_per_kind), f"{kind}noise", "vol",
                            str(cfg.volume)], check=True, capture_output=True)
        paths.append(path)
    recordings = RecordingSet.from_recordings(
        Recording.from_file(p, recording_id=f"noise-{p.stem}") for p in paths)
    windows = CutSet.from_manifests(recordings=recordings).cut_into_windows(cfg.window_seconds)
    cuts = CutSet.from_cuts(c for c in windows if c.duration >= min(1.0, cfg.window_seconds))
    cuts = compute_features(cuts, Path(output_dir) / "feats" / "noise", num_jobs=num_jobs,
                            desc="noise features")
    _check_features(cuts)
    save_manifest(cuts, cuts_path(output_dir, "noise"))
    return cuts


def build_tokenizer(output_dir: Path, texts: Sequence[str], cfg: PrepareConfig) -> Path:
    """Train ``tokenizer/bpe.model`` on the training transcripts."""
    return train_tokenizer(texts, Path(output_dir) / "tokenizer" / "bpe", cfg.tokenizer_vocab_size,
                           model_type=cfg.tokenizer_type)  # type: ignore[arg-type]


def split_stats(cuts: CutSet) -> dict[str, Any]:
    original = [c for c in cuts if not c.recording.transforms]
    speakers = {s.speaker for c in cuts for s in c.supervisions}
    return {"utterances": len(cuts), "hours": round(sum(c.duration for c in cuts) / 3600, 4),
            "utterances_before_speed_perturbation": len(original),
            "hours_before_speed_perturbation": round(sum(c.duration for c in original) / 3600, 4),
            "speakers": len(speakers)}


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def write_summary(output_dir: Path, stages: Stages, splits: Sequence[str],
                  train_splits: Sequence[str], extra: dict[str, Any]) -> dict[str, Any]:
    """Write ``corpus.json``: per-split hours/utterances/speakers, build time, disk bytes."""
    output_dir = Path(output_dir)
    summary: dict[str, Any] = {"splits": {}, "train_splits": list(train_splits),
                               "eval_splits": [s for s in splits if s not in train_splits]}
    for split in splits:
        summary["splits"][split] = split_stats(load_cuts(output_dir, split))
    noise = load_cuts(output_dir, "noise")
    summary["noise"] = {"cuts": len(noise), "hours": round(sum(c.duration for c in noise) / 3600, 4)}
    summary.update(extra)
    summary["build_wall_seconds"] = round(stages.total_seconds(), 1)
    summary["disk_bytes"] = _disk_bytes(output_dir)
    summary["layout"] = {"cuts": "cuts_<split>.jsonl.gz", "noise": "cuts_noise.jsonl.gz",
                         "tokenizer": "tokenizer/bpe.model"}
    with atomic_path(output_dir / "corpus.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary


def features_stage(output_dir: Path, split: str, cfg: PrepareConfig,
                    train: bool) -> Callable[[], None]:
    def stage() -> None:
        recordings = RecordingSet.from_file(manifest_path(output_dir, "recordings", split))
        supervisions = SupervisionSet.from_file(manifest_path(output_dir, "supervisions", split))
        cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
        cuts = cuts.trim_to_supervisions(keep_overlapping=False).to_eager()  # cut id = utterance id
        if train and cfg.speed_factors:
            cuts = speed_perturb(cuts, cfg.speed_factors).to_eager()
        cuts = compute_features(cuts, output_dir / "feats" / split, num_jobs=cfg.num_jobs,
                                desc=f"features {split}")
        _check_features(cuts)
        save_manifest(cuts, cuts_path(output_dir, split))
    return stage


def prepare_from_manifests(output_dir: Path, stages: Stages, cfg: PrepareConfig,
                           splits: Sequence[str], train_splits: Sequence[str], *,
                           extra_summary: dict[str, Any] | None = None) -> dict[str, CutSet]:
    """Shared stages after a recipe wrote ``manifests/{recordings,supervisions}_<split>.jsonl.gz``.

    Returns:
        The cuts (with features) of every split, plus ``"noise"``.
    """
    output_dir = Path(output_dir)
    for split in splits:
        stages.run(f"features_{split}", features_stage(
            output_dir, split, cfg, split in train_splits))
    stages.run("noise", lambda: build_noise(output_dir, cfg.noise, cfg.num_jobs) and None)

    def tokenizer_stage() -> None:
        texts = [s.text for split in train_splits
                 for s in SupervisionSet.from_file(manifest_path(output_dir, "supervisions", split))]
        build_tokenizer(output_dir, texts, cfg)

    stages.run("tokenizer", tokenizer_stage)
    write_summary(output_dir, stages, splits, train_splits, extra_summary or {})
    return {split: load_cuts(output_dir, split) for split in list(splits) + ["noise"]}
