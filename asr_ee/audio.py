"""Reading audio for inference: any rate (resampled to 16 kHz), any channel count (downmixed),
the formats soundfile reads (wav, flac, ogg, mp3 with libsndfile >= 1.1) and, failing that, what
ffmpeg decodes. Unreadable, empty or non-finite audio raises :class:`AudioError` saying why.

:func:`read_audio` returns a whole file (numpy; :func:`load_audio`, the same as a torch tensor);
:class:`AudioFile` reads one in blocks, so that what a long file costs in memory does not grow
with its length (``benchmarks/transcribe_memory.py``). Nothing here imports torch but
:func:`load_audio`: the ONNX runtime reads audio without it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from asr_ee.features import SAMPLE_RATE
from asr_ee.streaming.resample import resample

if TYPE_CHECKING:
    import torch

__all__ = ["AudioError", "AudioFile", "as_mono_float32", "read_audio", "load_audio", "to_model_rate"]


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file and the reason."""


def as_mono_float32(samples: Any) -> np.ndarray:
    """(N,) or (N, channels) floating-point samples (numpy, a CPU tensor, a list) -> (N,) float32
    numpy (channels averaged).

    Integer PCM, other shapes and NaN/infinite values raise AudioError (a ValueError)."""
    if hasattr(samples, "detach"):  # a torch tensor
        samples = samples.detach().cpu().numpy()
    x = np.asarray(samples)
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioError(f"expected floating-point samples in [-1, 1], got {x.dtype} (divide 16-bit PCM by 32768)")
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float64 if x.dtype == np.float64 else np.float32)
    if x.ndim != 1:
        raise AudioError(f"expected (samples,) or (samples, channels), got shape {tuple(x.shape)}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        raise AudioError(f"samples contain {int((~finite).sum())} NaN or infinite value(s); nothing was accepted")
    return x


def to_model_rate(samples: Any, sample_rate: int) -> np.ndarray:
    """Mono float32 samples at 16 kHz from (N,) or (N, C) samples at ``sample_rate``."""
    x = as_mono_float32(samples)
    if sample_rate <= 0:
        raise AudioError(f"invalid sample rate {sample_rate}")
    if sample_rate != SAMPLE_RATE:
        x = resample(x, sample_rate, SAMPLE_RATE)
    return x


def _ffmpeg_command(path: Path) -> list[str]:
    if shutil.which("ffmpeg") is None:
        raise AudioError(f"{path}: soundfile cannot read it and ffmpeg is not installed "
                         "(apt-get install ffmpeg)")
    return ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE),
            "-"]


def _ffmpeg_failed(path: Path, stderr: bytes) -> AudioError:
    reason = stderr.decode(errors="replace").strip().splitlines()
    return AudioError(f"{path}: cannot decode audio ({reason[-1] if reason else 'ffmpeg failed'})")


class AudioFile:
    """An audio file read in blocks of mono float32 samples at its own rate (:attr:`sample_rate`;
    16 kHz where ffmpeg decodes it). Checks what :func:`load_audio` checks, block by block: the
    error for non-finite samples names the second where they are.

    Example::

        audio = AudioFile("long.flac")
        for block in audio.blocks(seconds=10.0):
            stream.accept_waveform(audio.sample_rate, block)
    """

    def __init__(self, path: str | Path) -> None:
        import soundfile as sf

        self.path = Path(path)
        self.samples_read = 0  # by the last blocks() so far: the duration where num_samples is None (ffmpeg)
        if not self.path.is_file():
            raise AudioError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise AudioError(f"{self.path}: the file is empty (0 bytes)")
        try:
            info = sf.info(str(self.path))
            self.sample_rate, self.num_samples, self._ffmpeg = int(info.samplerate), int(info.frames), False
        except Exception:  # soundfile raises LibsndfileError/RuntimeError for what it cannot parse
            _ffmpeg_command(self.path)
            self.sample_rate, self.num_samples, self._ffmpeg = SAMPLE_RATE, None, True

    def blocks(self, seconds: float = 10.0) -> Iterator[np.ndarray]:
        """(N,) float32 blocks of ``seconds`` (the last one shorter), downmixed to mono."""
        size = max(1, round(seconds * self.sample_rate))
        raw = self._ffmpeg_blocks(size) if self._ffmpeg else self._soundfile_blocks(size)
        done = self.samples_read = 0
        for block in raw:
            if block.size == 0:
                continue
            try:
                x = as_mono_float32(block)
            except AudioError as e:
                raise AudioError(f"{self.path}: {e} (in the block at {done / self.sample_rate:.1f} s)") from e
            done = self.samples_read = done + x.size
            yield x
        if done == 0:
            raise AudioError(f"{self.path}: the file holds no audio samples")

    def _soundfile_blocks(self, size: int) -> Iterator[np.ndarray]:
        import soundfile as sf

        with sf.SoundFile(str(self.path)) as f:
            while True:
                block = f.read(size, dtype="float32", always_2d=False)
                if len(block) == 0:
                    return
                yield block

    def _ffmpeg_blocks(self, size: int) -> Iterator[np.ndarray]:
        proc = subprocess.Popen(_ffmpeg_command(self.path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        try:
            while True:
                data = proc.stdout.read(4 * size)
                if not data:
                    break
                yield np.frombuffer(data[: len(data) // 4 * 4], dtype=np.float32)
            stderr = proc.stderr.read()
            if proc.wait() != 0:
                raise _ffmpeg_failed(self.path, stderr)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


def _read_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    proc = subprocess.run(_ffmpeg_command(path), capture_output=True)
    if proc.returncode != 0:
        raise _ffmpeg_failed(path, proc.stderr)
    return np.frombuffer(proc.stdout, dtype=np.float32), SAMPLE_RATE


def load_audio(path: str | Path) -> "torch.Tensor":
    """:func:`read_audio` as a torch tensor (the torch path's form)."""
    import torch

    return torch.from_numpy(read_audio(path))


def read_audio(path: str | Path) -> np.ndarray:
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
