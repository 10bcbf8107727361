"""Feature extraction settings shared by corpus preparation, training and streaming.

80-dim log-mel fbank from lhotse, 25 ms windows every 10 ms, lhotse's defaults otherwise
(``snip_edges=False``: ``round(duration / 10 ms)`` frames, the signal reflected at both ends, which
lhotse's manifests require). Frame ``i`` covers samples ``[160 i - 120, 160 i + 280)``; the first
120 samples are mirrored before the start and the tail is mirrored after the end.
:class:`StreamingFbank` reproduces that exactly on a stream: it emits each frame as soon as its
window has arrived and the last few frames when the stream is finished.

torch and lhotse are imported on use: the constants here serve the ONNX runtime without them (its
fbank is :mod:`asr_ee.runtime.fbank`, kaldi-native-fbank).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from lhotse import Fbank, FbankConfig

__all__ = ["SAMPLE_RATE", "NUM_MEL_BINS", "FRAME_SHIFT_S", "FRAME_SHIFT_SAMPLES", "FRAME_LENGTH_SAMPLES",
           "fbank_config", "make_fbank", "num_frames", "StreamingFbank", "DEFAULT_TAIL_SILENCE_MS",
           "TAIL_NOISE_RMS", "tail_silence_samples", "tail_silence"]

SAMPLE_RATE = 16000
NUM_MEL_BINS = 80
FRAME_SHIFT_S = 0.01
FRAME_SHIFT_SAMPLES = 160
FRAME_LENGTH_SAMPLES = 400
# Silence appended to a finished input before its last chunk is decoded (streams: the CLI, the
# API and the microphone app; and evaluation under the chunk mask). The subsampling holds back up
# to 6 fbank frames and a causal CTC model spikes a word's last tokens a few frames after its
# audio: without it, audio trimmed right after speech loses its last word (issue 18: the last
# word right in 17 of 45 trimmed flite sentences against 37 of 45 untrimmed; benchmarks/last_word.py
# on its 20 sentences with the step-19,500 shipped model, no controller: trimmed 0/20 right without
# the tail, 7/20 with 320 ms, untrimmed 7/20 and 6/20: the rest are the model's own errors).
DEFAULT_TAIL_SILENCE_MS = 320.0
# The appended silence is quiet noise (seeded, so every path appends the same samples), not
# digital zeros: the log-mel of zeros is the floor of the fbank, far from any recorded silence
# (room tone, a microphone's self-noise) a model was trained on.
TAIL_NOISE_RMS = 1e-4  # -80 dBFS
_TAIL_NOISE_SEED = 18


def fbank_config() -> FbankConfig:
    from lhotse import FbankConfig

    return FbankConfig(sampling_rate=SAMPLE_RATE, num_filters=NUM_MEL_BINS, frame_shift=FRAME_SHIFT_S,
                       frame_length=0.025, snip_edges=False, dither=0.0)


def make_fbank() -> Fbank:
    """The feature extractor every part of asr_ee uses (training and the torch path; the ONNX
    runtime's equal twin is :mod:`asr_ee.runtime.fbank`)."""
    from lhotse import Fbank

    return Fbank(fbank_config())


def num_frames(num_samples: int) -> int:
    """Number of fbank frames for ``num_samples`` samples (lhotse's rounding)."""
    return (num_samples + FRAME_SHIFT_SAMPLES // 2) // FRAME_SHIFT_SAMPLES


def tail_silence_samples(tail_silence_ms: float) -> int:
    """16 kHz samples of ``tail_silence_ms`` of appended silence."""
    return round(tail_silence_ms * SAMPLE_RATE / 1000.0)


def tail_silence(tail_silence_ms: float) -> torch.Tensor:
    """The silence appended at the end of an input: ``tail_silence_ms`` of quiet Gaussian noise
    (RMS :data:`TAIL_NOISE_RMS`), the same samples every time. (N,) float32 at 16 kHz."""
    import torch

    generator = torch.Generator().manual_seed(_TAIL_NOISE_SEED)
    return TAIL_NOISE_RMS * torch.randn(tail_silence_samples(tail_silence_ms), generator=generator)


_LEFT_PAD = (FRAME_LENGTH_SAMPLES - FRAME_SHIFT_SAMPLES) // 2  # 120 mirrored samples before the start


class StreamingFbank:
    """Incremental fbank equal to ``make_fbank().extract`` on the whole signal.

    ``accept(samples)`` returns the frames (N, 80) whose windows are complete; ``finish()`` returns
    the remaining frames, computed against the mirrored tail exactly as the offline extractor does.
    Memory stays bounded: only the samples of the next window are kept.
    """

    def __init__(self) -> None:
        import torch

        self._module = make_fbank().extractor
        self._buffer = torch.zeros(0)  # padded-signal samples from the next frame's start
        self._head = torch.zeros(0)    # first samples (for the left mirror) until there are enough
        self._started = False
        self.frames_done = 0
        self.samples_seen = 0
        self._tail = torch.zeros(0)    # last samples seen, for the right mirror

    def _frames_from(self, padded: torch.Tensor, count: int) -> torch.Tensor:
        import torch

        if count <= 0:
            return torch.zeros(0, NUM_MEL_BINS)
        strided = padded[: (count - 1) * FRAME_SHIFT_SAMPLES + FRAME_LENGTH_SAMPLES].unsqueeze(0)
        strided = strided.as_strided((1, count, FRAME_LENGTH_SAMPLES), (strided.numel(), FRAME_SHIFT_SAMPLES, 1))
        with torch.no_grad():
            windows, log_energy = self._module.wav2win._forward_strided(strided)
            return self._module._forward_strided(windows, log_energy)[0]

    def accept(self, samples: torch.Tensor) -> torch.Tensor:
        import torch

        samples = samples.to(torch.float32).flatten()
        self.samples_seen += samples.numel()
        self._tail = torch.cat([self._tail, samples])[-FRAME_LENGTH_SAMPLES:]
        if not self._started:
            self._head = torch.cat([self._head, samples])
            if self._head.numel() < _LEFT_PAD + 1:
                return torch.zeros(0, NUM_MEL_BINS)
            self._buffer = torch.cat([torch.flip(self._head[:_LEFT_PAD], (0,)), self._head])
            self._head, self._started = torch.zeros(0), True
        else:
            self._buffer = torch.cat([self._buffer, samples])
        count = max(0, (self._buffer.numel() - FRAME_LENGTH_SAMPLES) // FRAME_SHIFT_SAMPLES + 1)
        count = min(count, num_frames(self.samples_seen) - self.frames_done)
        return self._emit(count)

    def _emit(self, count: int) -> torch.Tensor:
        feats = self._frames_from(self._buffer, count)
        self._buffer = self._buffer[count * FRAME_SHIFT_SAMPLES:]
        self.frames_done += max(count, 0)
        return feats

    def finish(self) -> torch.Tensor:
        """Frames left once the stream has ended (mirrored tail)."""
        import torch

        total = num_frames(self.samples_seen)
        remaining = total - self.frames_done
        if remaining <= 0:
            return torch.zeros(0, NUM_MEL_BINS)
        if not self._started:  # shorter than the left mirror: use the offline path
            feats = make_fbank().extract(self._head.numpy(), SAMPLE_RATE)
            self.frames_done = total
            return torch.from_numpy(feats)
        needed = (remaining - 1) * FRAME_SHIFT_SAMPLES + FRAME_LENGTH_SAMPLES - self._buffer.numel()
        if needed > 0:
            self._buffer = torch.cat([self._buffer, torch.flip(self._tail[-needed:], (0,))])
        return self._emit(remaining)
