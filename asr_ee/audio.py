"""Reading audio for inference: any rate (resampled to 16 kHz), any channel count (downmixed),
the formats soundfile reads (wav, flac, ogg, mp3 with libsndfile >= 1.1) and, failing that, what
ffmpeg decodes. Unreadable, empty or non-finite audio raises :class:`AudioError` saying why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch
import torchaudio

from asr_ee.features import SAMPLE_RATE

__all__ = ["AudioError", "as_mono_float32", "load_audio", "to_model_rate"]


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file and the reason."""


def as_mono_float32(samples: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N,) or (N, channels) floating-point samples -> (N,) float32 (channels averaged).

    Integer PCM, other shapes and NaN/infinite values raise AudioError (a ValueError)."""
    x = samples.detach() if isinstance(samples, torch.Tensor) else torch.as_tensor(np.asarray(samples))
    if not x.is_floating_point():
        raise AudioError(f"expected floating-point samples in [-1, 1], got {x.dtype} (divide 16-bit PCM by 32768)")
    if x.dim() == 2:
        x = x.mean(dim=1)
    if x.dim() != 1:
        raise AudioError(f"expected (samples,) or (samples, channels), got shape {tuple(x.shape)}")
    x = x.to(torch.float32)
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise AudioError(f"samples contain {bad} NaN or infinite value(s); nothing was accepted")
    return x


def to_model_rate(samples: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Mono float32 tensor at 16 kHz from (N,) or (N, C) samples at ``sample_rate``."""
    x = as_mono_float32(samples)
    if sample_rate <= 0:
        raise AudioError(f"invalid sample rate {sample_rate}")
    if sample_rate != SAMPLE_RATE:
        x = torchaudio.functional.resample(x, sample_rate, SAMPLE_RATE)
    return x


def _read_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    if shutil.which("ffmpeg") is None:
        raise AudioError(f"{path}: soundfile cannot read it and ffmpeg is not installed "
                         "(apt-get install ffmpeg)")
    proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1",
                           "-ar", str(SAMPLE_RATE), "-"], capture_output=True)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"{path}: cannot decode audio ({reason[-1] if reason else 'ffmpeg failed'})")
    return np.frombuffer(proc.stdout, dtype=np.float32), SAMPLE_RATE


def load_audio(path: str | Path) -> torch.Tensor:
    """Mono float32 16 kHz samples of an audio file."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception:  # soundfile raises LibsndfileError/RuntimeError for what it cannot parse
        samples, rate = _read_ffmpeg(path)
    if samples.size == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    try:
        return to_model_rate(samples, int(rate))
    except AudioError as e:
        raise AudioError(f"{path}: {e}") from e
