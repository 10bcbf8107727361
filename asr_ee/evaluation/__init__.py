"""Batch WER evaluation of an early-exit encoder: every exit, and every exit policy, against compute.

One forward pass per batch gives every exit's CTC posteriors (full context, or under the streaming
chunk mask). From them, per utterance:

* each exit's hypothesis (CTC greedy and/or prefix beam search) and its word errors;
* for each *policy* (an :class:`~asr_ee.exits.criteria.ExitCriterion` at one threshold, or the
  oracle) the exit it chooses for the whole utterance and for each chunk of ``chunk_frames``
  encoder frames, and the hypothesis decoded from the chosen exits' posteriors spliced chunk by
  chunk.

Choosing is selection only (:mod:`asr_ee.exits.selection`, shared with the oracle-bound scripts):
each criterion's value is computed once per exit (and chunk) with the same
:class:`~asr_ee.exits.criteria.ExitSelector` streaming uses, and every threshold reads it. The model
never runs again per policy.

Per-chunk choices read the posteriors of one forward pass. Under the chunk mask
(``attention: chunk``) these are exactly what a stream computes with ``SkipPolicy.RECOMPUTE`` (when
the skipped chunks are still in the left-context window); with ``SkipPolicy.COPY`` a stream only
approximates them. Under full attention they are the offline counterpart. With greedy decoding the
oracle's hypothesis is the last exit's.

Modules, one concern each:

* :mod:`~asr_ee.evaluation.config`: :class:`EvaluationConfig` and the policies it sweeps;
* :mod:`~asr_ee.evaluation.batching`: reading, duration batches, the forward, exit and stage timing;
* :mod:`~asr_ee.evaluation.scoring`: decoding and scoring one utterance;
* :mod:`~asr_ee.evaluation.summary`: the ``results.json`` rows (compute charged, the Pareto front);
* :mod:`~asr_ee.evaluation.runner`: :func:`evaluate`, which strings them together;
* :mod:`~asr_ee.evaluation.report`: the files ``asr-ee evaluate`` writes (table, plot);
* :mod:`~asr_ee.evaluation.by_voice`: WER per TTS engine and voice from a written evaluation;
* :mod:`~asr_ee.evaluation.exit_timing`: how many frames each exit's CTC spikes sit from the last
  exit's.

Shapes: B batch, T fbank frames, T' encoder frames (40 ms), F mel bins, V vocabulary.
"""

from asr_ee.evaluation.batching import ExitTimer, Features, duration_batches
from asr_ee.evaluation.config import DECODINGS, Decoding, EvaluationConfig
from asr_ee.evaluation.results import EvaluationResult, Failure, PolicyOutcome, Selection, UtteranceResult
from asr_ee.evaluation.runner import evaluate
from asr_ee.evaluation.scoring import visible_keys
from asr_ee.evaluation.summary import charged_exits
from asr_ee.exits.selection import (GRANULARITIES, POLICY_KINDS, Granularity, Policy, PolicyKind, choose_exits,
                                    criterion_values, first_accepted, oracle_exit, segment_bounds)

_Features = Features  # the name the tests knew before the package split

__all__ = ["Decoding", "Granularity", "PolicyKind", "DECODINGS", "GRANULARITIES", "POLICY_KINDS", "Policy",
           "EvaluationConfig", "Failure", "Selection", "PolicyOutcome", "UtteranceResult", "EvaluationResult",
           "ExitTimer", "Features", "evaluate", "choose_exits", "charged_exits", "criterion_values", "duration_batches",
           "first_accepted", "oracle_exit", "segment_bounds", "visible_keys"]
