"""The ``asr-ee`` console script: one subcommand per user-facing job, each a thin wrapper.

Each subcommand lives in ``asr_ee/commands/<name>.py`` and exposes ``register(subparsers)``, which
adds its parser and sets ``func`` to a callable taking the parsed args and returning an exit code.
Command modules import their heavy dependencies (torch, lhotse, the models) inside ``func``, so
building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from asr_ee import __version__

__all__ = ["main", "build_parser"]

COMMANDS = ["prepare", "train", "average", "lm", "info", "evaluate", "transcribe", "mic", "export", "train_gate"]
# What the runtime install (`pip install asr_ee`: transcribe and mic on an ONNX export) leaves out
# and the `train` extra brings: the commands that need it say so instead of a traceback.
TRAIN_EXTRA = ("torch", "torchaudio", "torchcodec", "lhotse", "lilcom", "tqdm", "matplotlib", "tensorboard", "onnx")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr-ee",
        description="Streaming speech recognition with early-exit encoders.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"asr_ee.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"asr_ee.commands.{name}":
                continue  # command not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in TRAIN_EXTRA:
            raise
        print(f"asr-ee {args.command}: needs {e.name}, which the runtime install leaves out "
              "(pip install 'asr_ee[train]')", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
