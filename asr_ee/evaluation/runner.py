""":func:`evaluate`: read, batch, forward once per batch (the ONNX runtime: every exit streamed,
:mod:`asr_ee.evaluation.streamed`), score every utterance, summarize."""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator, Sequence

import torch
from tqdm import tqdm

from asr_ee.config import ConfigError
from asr_ee.data.tokenizer import Tokenizer
from asr_ee.decoding.lm import NgramLM
from asr_ee.evaluation.batching import (ExitHidden, ExitTimer, StageClock, duration_batches, forward_exits,
                                        read_features, warm_up)
from asr_ee.evaluation.config import EvaluationConfig
from asr_ee.evaluation.results import EvaluationResult, Failure, UtteranceResult
from asr_ee.evaluation.scoring import Decoder, score_utterance
from asr_ee.evaluation.summary import summarize
from asr_ee.exits.criteria import ExitModel
from asr_ee.features import DEFAULT_TAIL_SILENCE_MS
from asr_ee.inputs import Utterance
from asr_ee.models import EarlyExitEncoder

__all__ = ["evaluate"]


@contextlib.contextmanager
def _exit_runner(encoder: Any, cfg: EvaluationConfig, device: torch.device, keep_hidden: bool
                 ) -> Iterator[tuple[Any, Any, Callable[[list], list[list[torch.Tensor]]]]]:
    """(timer with ``seconds`` per exit, hidden-state keeper with ``take``, forward of a batch) of
    the torch encoder (hooks on its modules) or of the ONNX runtime (every exit streamed)."""
    if getattr(encoder, "streams_numpy", False):
        from asr_ee.evaluation.streamed import StreamedExits

        exits = StreamedExits(encoder, cfg, keep_hidden)
        yield exits, exits, exits.forward
        return
    warm_up(encoder, cfg)
    with ExitTimer(encoder, device) as timer, ExitHidden(encoder, keep=keep_hidden) as hidden:
        yield timer, hidden, lambda batch: forward_exits(encoder, batch, cfg)


def evaluate(encoder: EarlyExitEncoder, tokenizer: Tokenizer, utterances: Sequence[Utterance],
             cfg: EvaluationConfig, lm: NgramLM | None = None, gate: ExitModel | None = None) -> EvaluationResult:
    """Evaluate every exit and every policy of ``cfg`` on ``utterances``.

    ``encoder``: a torch encoder, or an ``OnnxEncoder`` (the exported graphs: ``cfg.attention`` must
    be ``chunk``; features from its own front end, kaldi-native-fbank).

    ``lm`` (built for ``tokenizer``) is needed by, and only used by, the ``lm`` decoding; ``gate``
    (:func:`asr_ee.exits.gate.load_gate`) likewise by the ``gate`` criterion.

    Utterances that cannot be read are listed in ``summary["failed"]``; the others are evaluated.
    Results come back in input order.
    """
    device = torch.device(cfg.device)
    streamed = getattr(encoder, "streams_numpy", False)
    if not streamed:
        encoder = encoder.eval().to(device)
    if ("lm" in cfg.decodings) != (lm is not None):
        raise ConfigError("the 'lm' decoding needs a language model, and a language model needs the 'lm' decoding")
    if lm is not None:
        lm.check_tokenizer(tokenizer)
    if ("gate" in cfg.criteria) != (gate is not None):
        raise ConfigError("the 'gate' criterion needs a trained gate, and a gate needs the 'gate' criterion")
    policies, decoder, clock = cfg.policies(encoder.num_exits), Decoder(tokenizer, cfg, lm), StageClock()
    frontend = encoder.frontend if streamed else "lhotse"
    indexed = list(enumerate(utterances))
    # under the chunk mask an input ends as a stream's does: with the silence streams append
    tail_silence_ms = DEFAULT_TAIL_SILENCE_MS if cfg.attention == "chunk" else 0.0
    results: list[UtteranceResult] = []
    failed: list[Failure] = []
    with _exit_runner(encoder, cfg, device, gate is not None) as (timer, hidden, forward), \
            tqdm(total=len(indexed), disable=not cfg.progress, unit="utt", desc="evaluate") as bar:
        for start in range(0, len(indexed), cfg.window_utterances):
            t = time.perf_counter()
            items, bad = read_features(indexed[start:start + cfg.window_utterances], tail_silence_ms, frontend)
            t = clock.add("features", t)
            failed += bad
            bar.update(len(bad))
            for batch in duration_batches(items, cfg.batch_seconds):
                outs = forward(batch)
                t = clock.add("encoder", t)
                states = hidden.take([lps[0].size(0) for lps in outs])
                results += [score_utterance(item.index, item.utterance, item.num_samples, exit_lps, policies, cfg,
                                            decoder, h, gate) for item, exit_lps, h in zip(batch, outs, states)]
                t = clock.add("decode", t)
                bar.update(len(batch))
    results.sort(key=lambda r: r.index)  # batches run longest first; failures are already in order
    return EvaluationResult(summarize(results, failed, cfg, encoder, timer.seconds, clock), results)
