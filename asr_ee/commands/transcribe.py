"""``asr-ee transcribe``: recognize files through the streaming path (chunks, early exits, load
controller), as fast as possible or with simulated real-time arrival (``--realtime``).

Inputs: audio files, a lhotse cut manifest (``--cuts``), or ``--audio-dir`` with ``--transcripts``.
Prints ``id<TAB>text`` per utterance, or with ``--json`` one JSON object per line: ``id``, ``text``,
``segments`` and ``chunks`` (per chunk ``exit_layer``, ``criterion_value``, ``cap``, ``compute_ms``,
``backlog_ms``, ``cpu_load``); a file that cannot be read gets ``error`` instead. With references,
the word error rate goes to stderr. Exit status 0 when at least one utterance was transcribed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from asr_ee.exits.criteria import CRITERION_NAMES, DEFAULT_THRESHOLDS

__all__ = ["register", "add_recognizer_arguments", "build_config", "build_recognizer"]

CHUNK_FIELDS = ("exit_layer", "criterion_value", "cap", "compute_ms", "backlog_ms", "cpu_load")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio through the streaming recognizer")
    p.add_argument("files", nargs="*", help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("--cuts", help="lhotse cut manifest (.jsonl.gz)")
    p.add_argument("--audio-dir", help="folder of audio named by --transcripts")
    p.add_argument("--transcripts", help="Kaldi text file or TSV (with --audio-dir)")
    add_recognizer_arguments(p)
    p.add_argument("--realtime", action="store_true", help="feed audio at the speed it would arrive live")
    p.add_argument("--json", action="store_true", help="one JSON object per utterance, with the chunk trace")
    p.add_argument("--show-exits", action="store_true",
                   help="after each text line, the exit layer of every chunk and the compute used")
    p.set_defaults(func=run)


def add_recognizer_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The model and streaming options :func:`build_config` reads (for any command or app)."""
    p.add_argument("--model", help="exported model or checkpoint (default: the shipped model)")
    p.add_argument("--config", help="YAML file of StreamingConfig keys (options below override it)")
    p.add_argument("--chunk-frames", type=int, help="encoder frames (40 ms) per chunk")
    p.add_argument("--left-context-chunks", type=int, help="chunks of attention cache")
    p.add_argument("--criterion", choices=[*CRITERION_NAMES, "none"],
                   help="exit criterion ('none': every chunk to the cap)")
    p.add_argument("--threshold", type=float, help="criterion threshold (exit index for 'fixed')")
    p.add_argument("--skip-policy", choices=["copy", "recompute"], help="state of layers a chunk skipped")
    p.add_argument("--max-exit-layer", type=int,
                   help="deepest exit any chunk may reach (a layer number; default: the last exit)")
    p.add_argument("--decoding", choices=["greedy", "beam"],
                   help="default: beam when a language model is used (the shipped one with the shipped model)")
    p.add_argument("--beam", type=int, help="beam width (implies --decoding beam)")
    p.add_argument("--lm", help="token n-gram LM to fuse in beam search (`asr-ee lm`; default: exp/small/lm.pt "
                                "with the shipped model)")
    p.add_argument("--no-lm", action="store_true", help="CTC alone, no language model")
    p.add_argument("--lm-weight", type=float, help="LM weight in shallow fusion")
    p.add_argument("--length-bonus", type=float, help="per-token bonus with the LM")
    p.add_argument("--no-controller", action="store_true", help="no compute-load cap (criterion only)")
    p.add_argument("--no-endpoint", action="store_true", help="one segment per file")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")


def build_config(args: argparse.Namespace):
    """StreamingConfig from ``--config`` and the options (strict: bad values raise ConfigError)."""
    from asr_ee.config import ConfigError, load_yaml
    from asr_ee.exits.criteria import ExitCriterion
    from asr_ee.streaming import StreamingConfig

    cfg = load_yaml(StreamingConfig, args.config) if args.config else StreamingConfig()
    data: dict[str, Any] = cfg.to_dict()
    for key in ("chunk_frames", "left_context_chunks", "skip_policy", "max_exit_layer", "decoding", "beam",
                "lm_weight", "length_bonus"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.beam is not None and args.decoding is None:
        data["decoding"] = "beam"
    if args.criterion == "none":
        data["criterion"] = None
    elif args.criterion is not None:
        threshold = args.threshold if args.threshold is not None else DEFAULT_THRESHOLDS.get(args.criterion)
        if threshold is None:
            raise ConfigError(f"--criterion {args.criterion} needs --threshold")
        data["criterion"] = {"kind": args.criterion, "threshold": threshold}
    elif args.threshold is not None:
        if data["criterion"] is None:
            raise ConfigError("--threshold without a criterion; add --criterion")
        data["criterion"]["threshold"] = args.threshold
    if args.no_controller:
        data["controller"] = None
    if args.no_endpoint:
        data["endpoint"] = None
    cfg = StreamingConfig.from_dict(data)
    assert cfg.criterion is None or isinstance(cfg.criterion, ExitCriterion)
    return cfg


def build_recognizer(args: argparse.Namespace, config: Any = None, **kwargs: Any):
    """Model, LM and settings (``config``, default :func:`build_config`) as a Recognizer
    (``kwargs``: clock, cpu_load).

    The LM is ``--lm``, else the shipped one with the shipped model, unless ``--no-lm`` or greedy
    decoding is asked for (``--decoding greedy``, or ``decoding: greedy`` in ``--config``); with an
    LM the decoding is beam search. With the shipped model, streams stop at exit
    ``SHIPPED_MAX_EXIT_LAYER`` unless ``--max-exit-layer`` or ``max_exit_layer`` in ``--config`` says
    otherwise."""
    import dataclasses
    from pathlib import Path

    import yaml

    from asr_ee.config import ConfigError
    from asr_ee.pretrained import DEFAULT_MODEL, SHIPPED_MAX_EXIT_LAYER, load_pretrained, resolve_lm
    from asr_ee.streaming import Recognizer

    config = config if config is not None else build_config(args)
    pretrained = load_pretrained(args.model)
    if args.no_lm and args.lm:
        raise ConfigError("--lm and --no-lm contradict each other")
    from_file = (yaml.safe_load(Path(args.config).read_text()) or {}) if args.config else {}
    greedy = args.decoding == "greedy" or (args.decoding is None and from_file.get("decoding") == "greedy")
    if (pretrained.path.resolve() == DEFAULT_MODEL and args.max_exit_layer is None
            and "max_exit_layer" not in from_file):
        config = dataclasses.replace(config, max_exit_layer=SHIPPED_MAX_EXIT_LAYER)
    lm = None
    if not args.no_lm:
        if greedy:
            if args.lm:
                raise ConfigError("greedy decoding (--decoding greedy, or decoding: greedy in --config) cannot use a "
                                  "language model: drop --lm or decode with beam")
        else:
            lm = resolve_lm(args.lm, pretrained)
    if lm is not None:
        config = dataclasses.replace(config, decoding="beam")
    return Recognizer(pretrained, config, lm=lm, **kwargs)


def _utterances(args: argparse.Namespace):
    from asr_ee.inputs import InputError, from_cuts, from_files, from_transcripts

    forms = [bool(args.files), bool(args.cuts), bool(args.audio_dir or args.transcripts)]
    if sum(forms) != 1:
        raise InputError("give audio files, or --cuts, or --audio-dir with --transcripts (exactly one)")
    if args.cuts:
        return from_cuts(args.cuts)
    if args.audio_dir or args.transcripts:
        if not (args.audio_dir and args.transcripts):
            raise InputError("--audio-dir and --transcripts go together")
        return from_transcripts(args.audio_dir, args.transcripts)
    return from_files(args.files)


def _report(utt, result, as_json: bool, show_exits: bool = False) -> None:
    if as_json:
        record = {"id": utt.id, "source": utt.source, "text": result.text,
                  "segments": [{"text": s.text, "start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3)}
                               for s in result.segments],
                  "chunks": [{k: _rounded(getattr(c, k)) for k in CHUNK_FIELDS} for c in result.chunks]}
        if utt.reference is not None:
            record["reference"] = utt.reference
        print(json.dumps(record), flush=True)
    else:
        print(f"{utt.id}\t{result.text}", flush=True)
        if show_exits and result.chunks:
            layers = [c.exit_layer for c in result.chunks]
            compute = sum(c.compute_fraction * c.frames for c in result.chunks) / sum(c.frames for c in result.chunks)
            print(f"  exits per chunk: {' '.join(map(str, layers))}  (mean layer {sum(layers) / len(layers):.1f}, "
                  f"{100 * compute:.0f}% of full-depth compute)", flush=True)


def _rounded(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def run(args: argparse.Namespace) -> int:
    import torch

    from asr_ee.audio import AudioError
    from asr_ee.checkpoint import CheckpointError
    from asr_ee.config import ConfigError
    from asr_ee.decoding.wer import WordErrors, word_errors
    from asr_ee.inputs import InputError
    from asr_ee.streaming.simulate import run_stream

    torch.set_num_threads(max(1, args.threads))
    try:
        utterances = _utterances(args)
        recognizer = build_recognizer(args)
    except (ConfigError, InputError, CheckpointError, FileNotFoundError) as e:
        print(f"asr-ee transcribe: {e}", file=sys.stderr)
        return 2
    done, failed, errors = 0, 0, WordErrors()
    for utt in utterances:
        try:
            samples = utt.load()
        except AudioError as e:
            failed += 1
            print(f"asr-ee transcribe: {utt.id}: {e}", file=sys.stderr)
            if args.json:
                print(json.dumps({"id": utt.id, "source": utt.source, "error": str(e)}), flush=True)
            continue
        result = run_stream(recognizer, samples, realtime=args.realtime)
        _report(utt, result, args.json, args.show_exits)
        done += 1
        if utt.reference is not None:
            errors = errors + word_errors(utt.reference, result.text)
    if errors.num_words:
        print(f"WER {errors.wer:.2f}% ({errors.errors} errors / {errors.num_words} words, "
              f"{done} utterances)", file=sys.stderr)
    if failed:
        print(f"asr-ee transcribe: {failed} of {failed + done} utterances could not be read", file=sys.stderr)
    return 0 if done else 1
