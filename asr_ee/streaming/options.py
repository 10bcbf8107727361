"""Command-line options of the recognizer, shared by ``asr-ee transcribe`` and the microphone app
(``asr-ee mic``, ``python apps/mic.py``): they declare the options and hand them to the one
factory (:func:`asr_ee.streaming.factory.build_recognizer`).

Building a parser stays cheap (no torch); ``--help`` reads the model's shipped defaults from its
file to show them (:class:`HelpWithModelDefaults`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from asr_ee.exits.criteria import CRITERION_NAMES, DEFAULT_THRESHOLDS

__all__ = ["add_recognizer_arguments", "settings_from_args", "recognizer_from_args", "HelpWithModelDefaults",
           "OPTION_KEYS"]

# Options that set a StreamingConfig key of the same name when given.
OPTION_KEYS = ("chunk_frames", "left_context_chunks", "skip_policy", "max_exit_layer", "hold_chunks", "decoding",
               "beam", "lm_weight", "length_bonus")


def add_recognizer_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The model and streaming options :func:`recognizer_from_args` reads. Unset options take the
    model's own defaults (stored in its file), then StreamingConfig's."""
    p.add_argument("--model", help="model file or checkpoint (torch), or a folder written by `asr-ee export` "
                                   "(onnx) (default: the shipped model)")
    p.add_argument("--backend", choices=["torch", "onnx"],
                   help="run the encoder in torch or on onnxruntime (default: as --model is; the shipped model "
                        "on onnxruntime when it is installed)")
    p.add_argument("--config", help="YAML file of StreamingConfig keys (options below override it)")
    p.add_argument("--chunk-frames", type=int, help="encoder frames (40 ms) per chunk (default 8)")
    p.add_argument("--left-context-chunks", type=int, help="chunks of attention cache (default 4)")
    p.add_argument("--criterion", choices=[*CRITERION_NAMES, "none"],
                   help="exit criterion ('none': every chunk to the cap; default: the model's)")
    p.add_argument("--threshold", type=float,
                   help="criterion threshold; for 'fixed' the exit's layer number, as --max-exit-layer "
                        f"(defaults: {', '.join(f'{k} {v:g}' for k, v in DEFAULT_THRESHOLDS.items())})")
    p.add_argument("--hold-chunks", type=int,
                   help="a chunk goes at least as deep as the criterion chose on this many chunks before it "
                        "(0: each chunk on its own; default: the model's, else 0)")
    p.add_argument("--skip-policy", choices=["copy", "recompute"],
                   help="state of layers a chunk skipped (default copy)")
    p.add_argument("--max-exit-layer", type=int,
                   help="deepest exit any chunk may reach, a layer number (default: the model's; else the last exit)")
    p.add_argument("--decoding", choices=["greedy", "beam"],
                   help="default: beam when a language model is used, else greedy")
    p.add_argument("--beam", type=int, help="beam width (implies --decoding beam; default 8)")
    p.add_argument("--lm", help="token n-gram LM to fuse in beam search (`asr-ee lm`; default: the model's)")
    p.add_argument("--no-lm", action="store_true", help="CTC alone, no language model")
    p.add_argument("--lm-weight", type=float, help="LM weight in shallow fusion")
    p.add_argument("--length-bonus", type=float, help="per-token bonus with the LM")
    p.add_argument("--no-controller", action="store_true", help="no compute-load cap (criterion only)")
    p.add_argument("--no-endpoint", action="store_true", help="one segment per input")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads of torch or onnxruntime (default 1)")


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The StreamingConfig keys the user set: those of ``--config`` (checked strictly), then the
    options given. A bad file or value raises ConfigError."""
    from asr_ee.config import ConfigError, load_yaml
    from asr_ee.streaming import StreamingConfig

    settings: dict[str, Any] = {}
    if args.config:
        import yaml

        load_yaml(StreamingConfig, args.config)  # strict: unknown keys and bad values are errors
        settings.update(yaml.safe_load(Path(args.config).read_text()) or {})
    for key in OPTION_KEYS:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.beam is not None and args.decoding is None:
        settings["decoding"] = "beam"
    if args.no_controller:
        settings["controller"] = None
    if args.no_endpoint:
        settings["endpoint"] = None
    if args.no_lm and args.lm:
        raise ConfigError("--lm and --no-lm contradict each other")
    return settings


def recognizer_from_args(args: argparse.Namespace, *, extra_settings: dict[str, Any] | None = None, **kwargs: Any):
    """The recognizer the options describe (:func:`~asr_ee.streaming.factory.build_recognizer`;
    ``extra_settings``: StreamingConfig keys the caller adds where the user set none; ``kwargs``:
    ``recognizer_class``, ``clock``, ``cpu_load``)."""
    from asr_ee.streaming.factory import build_recognizer

    settings = settings_from_args(args)
    for key, value in (extra_settings or {}).items():
        settings.setdefault(key, value)
    lm: str | bool | None = False if args.no_lm else args.lm
    from asr_ee.runtime.backend import resolve_backend

    backend, model, note = resolve_backend(args.model, getattr(args, "backend", None))
    if note:
        print(note, file=sys.stderr)
    return build_recognizer(model, settings=settings, criterion=args.criterion, threshold=args.threshold,
                            lm=lm, threads=args.threads, backend=backend, **kwargs)


class HelpWithModelDefaults(argparse.Action):
    """``-h/--help`` that first reads the model's shipped defaults (of ``--model`` when given
    before it, else the shipped model) and writes them into the help of the options they set."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str = "show this help message and exit") -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        try:
            from asr_ee.streaming.factory import model_file_defaults

            path, defaults = model_file_defaults(getattr(namespace, "model", None))
            note = {
                "max_exit_layer": f"{defaults.get('max_exit_layer') or 'the last exit'}",
                "criterion": _criterion_note(defaults.get("criterion", {"kind": "entropy",
                                                                        "threshold": DEFAULT_THRESHOLDS["entropy"]})),
                "lm": defaults.get("lm") or "none",
                "hold_chunks": f"{defaults.get('hold_chunks', 0)}",
            }
            for action in parser._actions:
                if action.dest in note and action.help:
                    action.help += f" [{Path(path).name}: {note[action.dest]}]"
        except Exception as e:  # a help that cannot read the model still helps
            print(f"(the model's defaults could not be read: {e})", file=sys.stderr)
        parser.print_help()
        parser.exit()


def _criterion_note(criterion: Any) -> str:
    if criterion is None:
        return "none"
    if isinstance(criterion, dict):
        return f"{criterion['kind']} {criterion['threshold']:g}"
    return str(criterion)
