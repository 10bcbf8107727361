"""Helpers of the streaming tests: a seeded tiny model, synthetic audio, the offline reference
posteriors and a fake clock. (The shared ``tiny_corpus``/``overfit_model`` fixtures are not needed
here: every check compares the streaming path with the offline path on the same random model.)"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from asr_ee.data.tokenizer import Tokenizer
from asr_ee.models import build_encoder, preset
from asr_ee.pretrained import Pretrained

SENTENCES = [
    "the quick brown fox jumps over the lazy dog", "a stitch in time saves nine",
    "early exits save compute on small devices", "speech recognition runs chunk by chunk",
    "every good boy deserves fudge", "she sells sea shells by the sea shore",
    "how vexingly quick daft zebras jump", "pack my box with five dozen liquor jugs",
]


def make_pretrained(tokenizer_path: Path, arch: str = "tiny", seed: int = 0,
                    exit_layers: tuple[int, ...] = (1, 2, 3, 4)) -> Pretrained:
    """A random tiny model (4 layers, an exit after each by default) whose vocabulary matches the
    tokenizer."""
    tokenizer = Tokenizer(tokenizer_path)
    torch.manual_seed(seed)
    encoder = build_encoder(preset(arch, vocab_size=tokenizer.vocab_size, exit_layers=list(exit_layers))).eval()
    return Pretrained(encoder, tokenizer, Path(f"{arch}-seed{seed}"), {})


def synthetic_speech(seconds: float, sample_rate: int = 16000, seed: int = 0) -> torch.Tensor:
    """Bursts of harmonic tones and noise with pauses: enough variety that a random model's
    posteriors change from frame to frame."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * sample_rate)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    pitch = 120 + 80 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(pitch, 0) / sample_rate
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 6))
    envelope = (torch.sin(2 * math.pi * 1.3 * t) > -0.3).double()
    noise = torch.randn(n, generator=g, dtype=torch.float64)
    return (0.3 * voiced * envelope + 0.05 * noise).float()


def offline_log_probs(pretrained: Pretrained, samples: torch.Tensor, chunk_frames: int,
                      left_context_chunks: int, tail_silence_ms: float | None = None) -> list[torch.Tensor]:
    """Per exit (T', V) log-posteriors of the full forward pass under the chunk mask, over the
    samples and the silence a stream appends at the end of input (``tail_silence_ms``, default
    StreamingConfig's), so that it sees what a stream sees."""
    from asr_ee.features import DEFAULT_TAIL_SILENCE_MS, SAMPLE_RATE, make_fbank, tail_silence

    tail = tail_silence(DEFAULT_TAIL_SILENCE_MS if tail_silence_ms is None else tail_silence_ms)
    feats = torch.from_numpy(make_fbank().extract(torch.cat([samples, tail]).numpy(), SAMPLE_RATE))  # (T, F)
    with torch.no_grad():
        outs, _ = pretrained.encoder(feats[None], torch.tensor([feats.size(0)]), chunk_frames=chunk_frames,
                                     left_context_chunks=left_context_chunks)
    return [o[0] for o in outs]


class FakeClock:
    """A clock that moves only when told to (``advance``/``sleep``), plus ``tick`` seconds on every
    reading, so a recognizer's measured compute time per chunk is ``tick``."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now = 1000.0
        self.tick = tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.now += seconds
