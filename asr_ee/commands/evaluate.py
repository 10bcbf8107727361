"""``asr-ee evaluate``: WER of every exit and of every exit policy against encoder compute.

Inputs (one form per run):

    asr-ee evaluate data/cuts_test.jsonl.gz --output-dir exp/eval/test          # lhotse CutSet
    asr-ee evaluate --audio-dir wavs --transcripts text --output-dir out         # Kaldi text or TSV
    asr-ee evaluate a.wav b.flac --output-dir out                                # files, no reference
    asr-ee evaluate CUTS --backend onnx --model DIR --attention chunk --output-dir out  # exported graphs

Writes results.json, results.md, utterances.jsonl and wer_vs_compute.png into --output-dir.
Unreadable utterances are listed as failed and the rest is evaluated; the exit status is 1 only
when nothing could be evaluated (2 for a missing model, manifest or a bad option).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from asr_ee.exits.criteria import CRITERION_NAMES

if TYPE_CHECKING:
    from asr_ee.decoding.lm import NgramLM
    from asr_ee.evaluation import EvaluationConfig
    from asr_ee.exits.gate import ExitGate
    from asr_ee.inputs import Utterance
    from asr_ee.pretrained import Pretrained

__all__ = ["register", "run", "parse_thresholds"]

MANIFEST_SUFFIXES = (".jsonl.gz", ".jsonl", ".json", ".json.gz")
DECODING_CHOICES = {"greedy": ["greedy"], "beam": ["beam"], "lm": ["lm"], "both": ["greedy", "beam"],
                    "greedy+lm": ["greedy", "lm"], "all": ["greedy", "beam", "lm"]}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="per-exit and per-policy WER against compute: tables and plots",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="a lhotse cut manifest (.jsonl.gz) or audio files (any rate, channels, wav/flac/ogg/mp3)")
    p.add_argument("--audio-dir", type=Path, help="folder of the audio named by --transcripts")
    p.add_argument("--transcripts", type=Path,
                   help="Kaldi text (utt_id words...) or TSV (audio path relative to --audio-dir ... transcript)")
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--model", type=Path, help="exported model or checkpoint (default: the shipped exp/small/model.pt); "
                                             "with --backend onnx, a folder written by `asr-ee export`")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="torch, or the exported graphs on onnxruntime: every exit streamed chunk by chunk "
                        "(needs --attention chunk; features from kaldi-native-fbank; no gate criterion)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer .model, for checkpoints that do not carry one")
    p.add_argument("--decoding", choices=sorted(DECODING_CHOICES), default="greedy")
    p.add_argument("--beam", type=int, default=8, help="prefix beam search width")
    p.add_argument("--lm", type=Path, help="token n-gram LM for the 'lm' decoding (`asr-ee lm`; default: the "
                                          "shipped exp/small/lm.pt with the shipped model)")
    p.add_argument("--lm-weight", type=float, help="LM weight in shallow fusion (default 0.8)")
    p.add_argument("--length-bonus", type=float, help="per-token bonus with the LM")
    p.add_argument("--chunk-frames", type=int, default=8,
                   help="encoder frames (40 ms) per chunk for per-chunk exit decisions (and the chunk mask)")
    p.add_argument("--attention", choices=["full", "chunk"], default="full",
                   help="full context, or the streaming chunk mask of --chunk-frames/--left-context-chunks")
    p.add_argument("--left-context-chunks", type=int, help="with --attention chunk: left context (default: all)")
    p.add_argument("--criteria", help=f"comma-separated subset of {','.join(CRITERION_NAMES)},oracle "
                                      "(default: all but gate)")
    p.add_argument("--thresholds", action="append", default=[], metavar="CRITERION=V1,V2,...",
                   help="replace a criterion's threshold sweep, e.g. entropy=0.05,0.1 (repeatable)")
    p.add_argument("--hold-chunks", metavar="H1,H2,...",
                   help="per-chunk policies also with these holds: a chunk goes at least as deep as its criterion "
                        "chose on the H chunks before it (default 0: each chunk on its own), e.g. 0,2")
    p.add_argument("--gate", type=Path, help="exit gate for the 'gate' criterion (`asr-ee train-gate`; default: "
                                            "<model stem>.gate.json beside the model, or in the exported folder)")
    p.add_argument("--gate-budget", metavar="B1,B2,...",
                   help="gate thresholds from compute budgets (shares of full depth, e.g. 0.7), read off the "
                        "gate's calibration on its training data; added to the 'gate' sweep")
    p.add_argument("--batch-seconds", type=float, default=120.0, help="padded audio seconds per forward batch")
    p.add_argument("--limit", type=int, help="evaluate only the first N utterances")
    p.add_argument("--threads", type=int, help="torch threads (default: every core); onnxruntime threads (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-plot", action="store_true", help="skip wer_vs_compute.png")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_thresholds(items: list[str]) -> dict[str, list[float]]:
    """``["entropy=0.1,0.2"]`` -> ``{"entropy": [0.1, 0.2]}``."""
    from asr_ee.config import ConfigError

    out: dict[str, list[float]] = {}
    for item in items:
        kind, sep, values = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[kind.strip()] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError as e:
            raise ConfigError(f"--thresholds {item!r} must look like criterion=0.1,0.2") from e
    return out


def _utterances(args: argparse.Namespace) -> tuple[list[Utterance], list[str]]:
    """The utterances of the one input form given, and a description of the inputs."""
    from asr_ee.config import ConfigError
    from asr_ee.inputs import from_cuts, from_files, from_transcripts

    if (args.audio_dir is None) != (args.transcripts is None):
        raise ConfigError("--audio-dir and --transcripts go together")
    if args.transcripts is not None:
        if args.inputs:
            raise ConfigError("give either --audio-dir/--transcripts or INPUT paths, not both")
        return from_transcripts(args.audio_dir, args.transcripts), [str(args.transcripts)]
    if not args.inputs:
        raise ConfigError("nothing to evaluate: give a cut manifest, audio files, or --audio-dir/--transcripts")
    manifests = [i for i in args.inputs if i.endswith(MANIFEST_SUFFIXES)]
    if manifests and len(args.inputs) > 1:
        raise ConfigError("give one cut manifest, or audio files, not both")
    if manifests:
        return from_cuts(manifests[0]), manifests
    return from_files(args.inputs), list(args.inputs)


def _config(args: argparse.Namespace) -> EvaluationConfig:
    from asr_ee.config import ConfigError
    from asr_ee.evaluation import EvaluationConfig

    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()] if args.criteria else None
    kwargs = {} if criteria is None else {"criteria": criteria}
    for name in ("lm_weight", "length_bonus"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.hold_chunks is not None:
        try:
            kwargs["hold_chunks"] = [int(h) for h in args.hold_chunks.split(",") if h.strip()]
        except ValueError as e:
            raise ConfigError(f"--hold-chunks {args.hold_chunks!r} must look like 0,2") from e
    return EvaluationConfig(decodings=DECODING_CHOICES[args.decoding], beam=args.beam, chunk_frames=args.chunk_frames,
                            attention=args.attention, left_context_chunks=args.left_context_chunks,
                            thresholds=parse_thresholds(args.thresholds), batch_seconds=args.batch_seconds,
                            device=args.device, progress=not args.quiet, **kwargs)


def _gate(args: argparse.Namespace, cfg: EvaluationConfig, pretrained: Pretrained) -> ExitGate | None:
    """The gate the 'gate' criterion needs (checked against the model); ``--gate-budget`` thresholds
    join its sweep."""
    from asr_ee.config import ConfigError
    from asr_ee.exits.gate import find_gate, load_gate

    if "gate" not in cfg.criteria:
        if args.gate is not None or args.gate_budget is not None:
            raise ConfigError("--gate and --gate-budget go with the 'gate' criterion: add it to --criteria")
        return None
    gate = load_gate(args.gate or find_gate(pretrained.path), pretrained.encoder)
    if args.gate_budget is not None:
        try:
            budgets = [float(b) for b in args.gate_budget.split(",") if b.strip()]
        except ValueError as e:
            raise ConfigError(f"--gate-budget {args.gate_budget!r} must look like 0.7,0.8") from e
        found = [gate.threshold_for_budget(b) for b in budgets]
        hold = gate.calibrated_hold
        for budget, threshold in zip(budgets, found):
            print(f"gate budget {budget:g}: threshold {threshold:g} (calibrated with hold {hold})")
        if hold not in cfg.hold_chunks:
            print(f"note: the budgets hold with --hold-chunks {hold}, which this run does not evaluate",
                  file=sys.stderr)
        sweep = cfg.thresholds.get("gate", [])
        cfg.thresholds["gate"] = sweep + [t for t in dict.fromkeys(found) if t not in sweep]
    return gate


def _prepare(args: argparse.Namespace) -> tuple[EvaluationConfig, Pretrained, NgramLM | None, list[Utterance],
                                                 list[str], ExitGate | None]:
    """Config, model, LM, utterances and gate; raises the errors :func:`run` turns into one-line messages."""
    from asr_ee.config import ConfigError
    from asr_ee.pretrained import load_pretrained, resolve_lm

    cfg = _config(args)
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be >= 1")
    utterances, inputs = _utterances(args)
    if args.backend == "onnx":
        from asr_ee.runtime.backend import load_model_for_backend

        if cfg.attention != "chunk":
            raise ConfigError("--backend onnx evaluates the stream as it runs: add --attention chunk")
        pretrained = load_model_for_backend(args.model, "onnx", threads=args.threads or 1)
    else:
        pretrained = load_pretrained(args.model, args.tokenizer)
    cfg.policies(pretrained.encoder.num_exits)  # validate fixed thresholds before any work
    lm = None
    if "lm" in cfg.decodings:
        lm = resolve_lm(args.lm, pretrained, required=True)
    elif args.lm is not None:
        raise ConfigError("--lm is used by the 'lm' decoding: add --decoding lm (or greedy+lm, all)")
    gate = _gate(args, cfg, pretrained)
    return cfg, pretrained, lm, utterances[: args.limit], inputs, gate


def run(args: argparse.Namespace) -> int:
    import torch

    from asr_ee.checkpoint import CheckpointError
    from asr_ee.config import ConfigError
    from asr_ee.evaluation import evaluate
    from asr_ee.evaluation.report import OutputDir, write_outputs
    from asr_ee.inputs import InputError

    output = OutputDir(args.output_dir)
    try:
        output.__enter__()  # checked and held before the work: a second run into it is refused now
    except OSError as e:
        print(f"asr-ee evaluate: cannot write to {args.output_dir}: {e}", file=sys.stderr)
        return 2
    with output:
        try:
            cfg, pretrained, lm, utterances, inputs, gate = _prepare(args)
        except (ConfigError, InputError, CheckpointError, FileNotFoundError, ValueError) as e:
            print(f"asr-ee evaluate: {e}", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads or os.cpu_count() or 1)
        result = evaluate(pretrained.encoder, pretrained.tokenizer, utterances, cfg, lm=lm, gate=gate)
        result.summary = {"model": str(pretrained.path), "inputs": inputs, **result.summary}
        try:
            paths = write_outputs(result, args.output_dir, plot=not args.no_plot)
        except OSError as e:
            print(f"asr-ee evaluate: cannot write to {args.output_dir}: {e}", file=sys.stderr)
            return 2
    _print_summary(result.summary, paths)
    return 0 if result.num_evaluated else 1


def _print_summary(summary: dict, paths: dict[str, Path]) -> None:
    print(f"evaluated {summary['num_evaluated']} of {summary['num_utterances']} utterances "
          f"({summary['num_failed']} failed)")
    for row in summary["per_exit"]:
        wer = "n/a" if row["wer"] is None else f"{row['wer']:.2f}%"
        print(f"  {row['decoding']:6s} exit layer {row['exit_layer']:2d}: WER {wer:>8s}, "
              f"compute {row['compute_fraction']:.3f}")
    for failure in summary["failed"]:
        print(f"  failed {failure['id']}: {failure['error']}", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
