"""Reading, batching and the batched forward, with its timing: wall seconds per stage and to each exit.

The time to reach each exit is measured in the same forward pass (hooks on the exit heads), which is
what a forward stopping there would take.

Shapes: B batch, T fbank frames, T' encoder frames, F mel bins, V vocabulary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from asr_ee.evaluation.config import EvaluationConfig
from asr_ee.evaluation.results import Failure
from asr_ee.features import FRAME_SHIFT_S, SAMPLE_RATE, make_fbank
from asr_ee.inputs import Utterance
from asr_ee.models import EarlyExitEncoder
from asr_ee.models.subsampling import MIN_INPUT_FRAMES

__all__ = ["Features", "read_features", "duration_batches", "forward_exits", "warm_up", "ExitTimer", "ExitHidden",
           "StageClock"]


@dataclass
class Features:
    """One utterance's fbank features and its position in the input."""

    index: int
    utterance: Utterance
    feats: torch.Tensor  # (T, F)
    num_samples: int


def read_features(indexed: list[tuple[int, Utterance]], tail_silence_ms: float = 0.0, frontend: str = "lhotse"
                  ) -> tuple[list[Features], list[Failure]]:
    """Load and featurize (with ``tail_silence_ms`` of the streams' end-of-input silence appended:
    :func:`asr_ee.features.tail_silence`); any problem with one utterance makes it a
    :class:`Failure`, not an abort. ``frontend``: lhotse's fbank, or the ONNX runtime's
    (``kaldi-native-fbank``, with its own tail silence: :mod:`asr_ee.streaming.frontend`)."""
    from asr_ee.streaming.frontend import tail_silence

    items, failed = [], []
    tail = tail_silence(frontend, tail_silence_ms)
    if frontend == "lhotse":
        fbank = make_fbank()

        def extract(signal: np.ndarray) -> np.ndarray:
            return fbank.extract(signal, SAMPLE_RATE)
    else:
        from asr_ee.runtime.fbank import fbank as extract
    for index, utt in indexed:
        try:
            samples = utt.load()
            feats = torch.from_numpy(extract(np.concatenate([samples.numpy(), tail]))).float()
            items.append(Features(index, utt, feats, samples.numel()))
        except Exception as e:  # one bad file must not stop the evaluation; it is reported instead
            reason = str(e) or type(e).__name__
            if not isinstance(e, ValueError):  # AudioError/InputError are ValueErrors with a full message
                reason = f"{type(e).__name__}: {reason}"
            failed.append(Failure(utt.id, utt.source, reason))
    return items, failed


def duration_batches(items: list[Features], batch_seconds: float) -> list[list[Features]]:
    """Longest first; each batch holds what fits in ``batch_seconds`` of padded audio (at least one)."""
    max_frames = batch_seconds / FRAME_SHIFT_S
    batches: list[list[Features]] = []
    for item in sorted(items, key=lambda f: -f.feats.size(0)):
        if batches and batches[-1][0].feats.size(0) * (len(batches[-1]) + 1) <= max_frames:
            batches[-1].append(item)
        else:
            batches.append([item])
    return batches


@torch.no_grad()
def forward_exits(encoder: EarlyExitEncoder, batch: list[Features], cfg: EvaluationConfig
                  ) -> list[list[torch.Tensor]]:
    """Per utterance of the batch, per exit, (T', V) log-posteriors from one forward."""
    device = torch.device(cfg.device)
    lengths = torch.tensor([b.feats.size(0) for b in batch])
    feats = pad_sequence([b.feats for b in batch], batch_first=True)  # (B, T, F)
    if feats.size(1) < MIN_INPUT_FRAMES:
        feats = F.pad(feats, (0, 0, 0, MIN_INPUT_FRAMES - feats.size(1)))
    chunk = cfg.chunk_frames if cfg.attention == "chunk" else None
    outs, out_lens = encoder(feats.to(device), lengths.to(device), chunk_frames=chunk,
                             left_context_chunks=cfg.left_context_chunks)  # [(B, T', V)], (B,)
    return [[o[i, :n].float().cpu() for o in outs] for i, n in enumerate(out_lens.tolist())]


def warm_up(encoder: EarlyExitEncoder, cfg: EvaluationConfig) -> None:
    """One untimed forward on a second of silence, so the first batch's exit times are not inflated
    by one-off allocations."""
    silence = Features(-1, Utterance("warm-up", None, "-"), torch.zeros(100, encoder.cfg.num_mel_bins), SAMPLE_RATE)
    forward_exits(encoder, [silence], cfg)


class _Hooks:
    """Forward hooks held for a ``with`` block (removed on exit)."""

    _handles: list[torch.utils.hooks.RemovableHandle]

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ExitTimer(_Hooks):
    """Wall time from the start of each forward to each exit head's output, summed over forwards.

    A forward that runs every exit passes exit k exactly when a forward with ``num_exits=k+1`` would
    end, so one pass measures the cost of stopping at every exit.
    """

    def __init__(self, encoder: EarlyExitEncoder, device: torch.device) -> None:
        self.seconds = [0.0] * encoder.num_exits
        self._sync = device.type == "cuda"
        self._start = 0.0
        self._handles = [encoder.subsampling.register_forward_pre_hook(self._on_start)]
        self._handles += [head.register_forward_hook(partial(self._on_exit, k)) for k, head in enumerate(encoder.exits)]

    def _now(self) -> float:
        if self._sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _on_start(self, module: torch.nn.Module, args: tuple) -> None:
        self._start = self._now()

    def _on_exit(self, k: int, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.seconds[k] += self._now() - self._start


class ExitHidden(_Hooks):
    """The hidden states each exit head reads in a forward (hooks on the heads): the learned gate's
    features. With ``keep=False`` it holds nothing and :meth:`take` gives None per utterance."""

    def __init__(self, encoder: EarlyExitEncoder, keep: bool = True) -> None:
        self._batch: list[torch.Tensor] = []  # per exit, (B, T', D) of the last forward
        self._handles = [head.register_forward_hook(self._keep) for head in encoder.exits] if keep else []

    def _keep(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        self._batch.append(args[0].detach().float().cpu())

    def take(self, lengths: list[int]) -> list[list[torch.Tensor] | None]:
        """Per utterance of the last forward (``lengths``: its encoder frames), per exit, (T', D)."""
        batch, self._batch = self._batch, []
        if not self._handles:
            return [None] * len(lengths)
        return [[h[i, :n] for h in batch] for i, n in enumerate(lengths)]


class StageClock:
    """Wall seconds per stage (features, encoder, decode) and the run's throughput."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"features": 0.0, "encoder": 0.0, "decode": 0.0}
        self._t0 = time.perf_counter()

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now

    def timing(self, audio_seconds: float, evaluated: int) -> dict[str, Any]:
        total = time.perf_counter() - self._t0
        return {**{f"{k}_seconds": round(v, 4) for k, v in self.seconds.items()}, "total_seconds": round(total, 4),
                "audio_seconds": round(audio_seconds, 4), "utterances_per_second": evaluated / total if total else None,
                "real_time_factor": total / audio_seconds if audio_seconds else None,
                "torch_threads": torch.get_num_threads()}
