"""Training data pipeline: lhotse samplers, dataset and train-time augmentation.

Knows nothing about the model it feeds. Batches come from ``DynamicBucketingSampler`` (buckets by
duration, total duration per batch capped), ``K2SpeechRecognitionDataset`` with precomputed or
on-the-fly features, noise mixing (``CutMix`` against the recipe's noise cuts; mixed in the fbank
domain when features are precomputed), reverberation (on-the-fly features only: it needs audio),
babble (other training utterances mixed at low SNR), real-world channels on the audio
(:mod:`asr_ee.data.channels`: band limits and EQ, telephone, MP3/GSM, clipping, volume; on-the-fly
features only), vocal tract length perturbation of the features (``augment.FrequencyWarp``) and
SpecAugment. Several training manifests are multiplexed with ``train_weights``.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
from lhotse import CutSet
from lhotse.dataset import (CutMix, DynamicBucketingSampler, K2SpeechRecognitionDataset, OnTheFlyFeatures,
                            PrecomputedFeatures, ReverbWithImpulseResponse, SpecAugment)

from asr_ee.config import ConfigError
from asr_ee.data.augment import FrequencyWarp
from asr_ee.data.channels import ChannelAugment, ChannelConfig
from asr_ee.features import make_fbank

__all__ = ["DataConfig", "load_cuts", "make_train_loader", "make_valid_loader", "spec_augment", "batch_lengths"]


@dataclass
class DataConfig:
    """Where the data is and how it is batched and augmented (paths relative to ``data_dir``)."""

    data_dir: str = "data/offline_tts_small"
    train_cuts: list[str] = field(default_factory=lambda: ["cuts_train.jsonl.gz"])
    train_weights: list[float] | None = None  # sampling weight of each train_cuts manifest (None: equal)
    valid_cuts: str = "cuts_dev.jsonl.gz"
    noise_cuts: str | None = "cuts_noise.jsonl.gz"
    tokenizer: str = "tokenizer/bpe.model"
    max_duration: float = 80.0
    num_buckets: int = 10
    max_cut_duration: float = 20.0
    on_the_fly_features: bool = False
    noise_prob: float = 0.5
    noise_snr: list[float] = field(default_factory=lambda: [5.0, 25.0])
    reverb_prob: float = 0.0
    babble_prob: float = 0.0  # mix another training utterance (no transcript) into this one
    babble_snr: list[float] = field(default_factory=lambda: [5.0, 20.0])
    channels: ChannelConfig = field(default_factory=ChannelConfig)  # needs on_the_fly_features
    spec_augment: bool = True
    # scales SpecAugment's mask sizes and masked share (1.0: 2 feature masks of up to 15 bins, 4 frame
    # masks of up to 40 frames, at most 15% of the frames; 1.6: 24 bins, 64 frames, 24%)
    spec_augment_strength: float = 1.0
    freq_warp: float = 0.0  # VTLP: warp each utterance's mel axis by U(1 - w, 1 + w); 0 = off
    num_workers: int = 0
    sync_buckets: bool = True  # DDP ranks draw from the same duration bucket (lhotse's default)

    def __post_init__(self) -> None:
        if not 0 < self.spec_augment_strength <= 3:
            raise ConfigError(f"data.spec_augment_strength must be in (0, 3], got {self.spec_augment_strength}")
        if not 0 <= self.freq_warp < 0.5:
            raise ConfigError(f"data.freq_warp must be in [0, 0.5) (0.1 is the usual VTLP range), got {self.freq_warp}")
        if self.train_weights is not None and (len(self.train_weights) != len(self.train_cuts)
                                               or min(self.train_weights) <= 0):
            raise ConfigError(f"data.train_weights needs one positive weight per train_cuts entry, got "
                              f"{self.train_weights} for {len(self.train_cuts)} manifests")
        if self.channels.any and not self.on_the_fly_features:
            raise ConfigError("data.channels needs data.on_the_fly_features: true (channels are applied "
                              "to audio, precomputed features have none)")

    def path(self, name: str) -> Path:
        return Path(self.data_dir) / name


def load_cuts(path: Path) -> CutSet:
    """Open a cut manifest lazily; a missing or unreadable one is an error that names it."""
    if not path.is_file():
        raise ConfigError(f"cut manifest {path} does not exist (run `asr-ee prepare` first)")
    try:
        return CutSet.from_jsonl_lazy(path)
    except Exception as e:  # lhotse raises many kinds on corrupt input
        raise ConfigError(f"cut manifest {path} cannot be read: {e}") from e


def _train_cuts(cfg: DataConfig) -> CutSet:
    sets = [load_cuts(cfg.path(p)) for p in cfg.train_cuts]
    cuts = sets[0] if len(sets) == 1 else CutSet.mux(*sets, weights=cfg.train_weights)
    if cfg.on_the_fly_features:  # features are computed from audio; a stale feature manifest must not be used
        cuts = cuts.drop_features()
    return cuts.filter(functools.partial(_duration_ok, max_duration=cfg.max_cut_duration))


def _duration_ok(cut, max_duration: float) -> bool:
    return 0.3 <= cut.duration <= max_duration


def make_train_loader(cfg: DataConfig, *, seed: int, world_size: int = 1, rank: int = 0,
                      augment_rng: random.Random | None = None
                      ) -> tuple[torch.utils.data.DataLoader, DynamicBucketingSampler]:
    """Training loader and its sampler (whose ``state_dict`` makes resumption exact).

    ``augment_rng`` drives noise mixing and reverberation; a trainer that checkpoints its state
    resumes with the same draws (SpecAugment uses the global RNGs)."""
    augment_rng = augment_rng if augment_rng is not None else random.Random(seed)
    sampler = DynamicBucketingSampler(_train_cuts(cfg), max_duration=cfg.max_duration, num_buckets=cfg.num_buckets,
                                      shuffle=True, drop_last=world_size > 1, seed=seed,
                                      world_size=world_size, rank=rank, buffer_size=20000,
                                      sync_buckets=cfg.sync_buckets)
    cut_transforms = []
    if cfg.noise_cuts and cfg.noise_prob > 0:
        noise = load_cuts(cfg.path(cfg.noise_cuts)).to_eager()
        cut_transforms.append(CutMix(noise, snr=tuple(cfg.noise_snr), p=cfg.noise_prob, seed=augment_rng,
                                     preserve_id=True, random_mix_offset=True))
    if cfg.babble_prob > 0:
        speech = load_cuts(cfg.path(cfg.train_cuts[0])).filter(lambda c: "_sp" not in c.id)
        speech = speech.drop_supervisions().to_eager()
        if cfg.on_the_fly_features:
            speech = speech.drop_features()
        cut_transforms.append(CutMix(speech, snr=tuple(cfg.babble_snr), p=cfg.babble_prob, seed=augment_rng,
                                     preserve_id=True, random_mix_offset=True))
    if cfg.reverb_prob > 0:
        if not cfg.on_the_fly_features:
            raise ConfigError("data.reverb_prob > 0 needs data.on_the_fly_features: true (reverberation "
                              "is applied to audio, precomputed features have none)")
        cut_transforms.append(ReverbWithImpulseResponse(p=cfg.reverb_prob, randgen=augment_rng))
    input_transforms = [FrequencyWarp(cfg.freq_warp, augment_rng)] if cfg.freq_warp > 0 else []
    if cfg.spec_augment:
        input_transforms.append(spec_augment(cfg.spec_augment_strength))
    wave_transforms = [ChannelAugment(cfg.channels, augment_rng)] if cfg.channels.any else []
    strategy = (OnTheFlyFeatures(make_fbank(), wave_transforms=wave_transforms) if cfg.on_the_fly_features
                else PrecomputedFeatures())
    dataset = K2SpeechRecognitionDataset(return_cuts=True, cut_transforms=cut_transforms,
                                         input_transforms=input_transforms, input_strategy=strategy)
    loader = torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=cfg.num_workers,
                                         persistent_workers=False)
    return loader, sampler


def make_valid_loader(cfg: DataConfig, cuts: CutSet | None = None, max_duration: float | None = None
                      ) -> torch.utils.data.DataLoader:
    cuts = cuts if cuts is not None else load_cuts(cfg.path(cfg.valid_cuts))
    if cfg.on_the_fly_features:
        cuts = cuts.drop_features()
    sampler = DynamicBucketingSampler(cuts, max_duration=max_duration or cfg.max_duration * 2, shuffle=False,
                                      num_buckets=min(cfg.num_buckets, 4))
    strategy = OnTheFlyFeatures(make_fbank()) if cfg.on_the_fly_features else PrecomputedFeatures()
    dataset = K2SpeechRecognitionDataset(return_cuts=True, input_strategy=strategy)
    return torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)


def spec_augment(strength: float = 1.0) -> SpecAugment:
    """SpecAugment as the recipes use it, its mask sizes and masked share scaled by ``strength``."""
    return SpecAugment(time_warp_factor=None, num_feature_masks=2, features_mask_size=max(1, round(15 * strength)),
                       num_frame_masks=4, frames_mask_size=max(1, round(40 * strength)),
                       max_frames_mask_fraction=min(0.5, 0.15 * strength))


def batch_lengths(batch: dict) -> tuple[torch.Tensor, list[str], list[str]]:
    """Feature lengths (B,), transcripts and cut ids of a K2SpeechRecognitionDataset batch, in the
    order of ``batch["inputs"]`` (one supervision per cut)."""
    sup = batch["supervisions"]
    order = sup["sequence_idx"].argsort()
    if len(order) != batch["inputs"].size(0):
        raise ValueError("each cut must carry exactly one supervision")
    lengths = sup["num_frames"][order]
    texts = [sup["text"][i] for i in order.tolist()]
    cut_ids = [sup["cut"][i].id for i in order.tolist()]
    return lengths, texts, cut_ids
