"""``asr-ee mic``: live transcription from a microphone (or a file at real-time pace), showing the
partial text, finished segments and, per chunk, the exit layer, the load controller's cap and the
CPU load. The program itself is ``apps/micapp`` in the repository (also runnable as
``python apps/mic.py``); this module only declares its options and hands the parsed arguments over.

``apps/`` is not part of the installed package: it is found next to ``asr_ee/`` (the repository
is installed editable, as the shipped model in ``exp/`` is), loaded by file path when the command
runs and never when ``asr_ee`` is imported.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["register", "add_arguments", "load_app", "run", "APPS_DIR", "DESCRIPTION"]

DESCRIPTION = ("Live transcription from a microphone, or from a file at real-time pace (--input-file), "
               "showing the partial text, finished segments and, per chunk, the exit layer, the load "
               "controller's cap and the CPU load; a summary at the end. Ctrl-C stops and prints the "
               "transcript.")
APPS_DIR = Path(__file__).resolve().parents[2] / "apps"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The app's options (shared by ``asr-ee mic`` and ``python apps/mic.py``)."""
    from asr_ee.commands.transcribe import add_recognizer_arguments

    src = p.add_argument_group("input")
    src.add_argument("--device", help="input device: index or part of its name (see --list-devices)")
    src.add_argument("--list-devices", action="store_true", help="list the audio input devices and exit")
    src.add_argument("--input-file", metavar="FILE",
                     help="feed an audio file through the same path at real-time pace, instead of a microphone")
    src.add_argument("--speed", type=float, default=1.0,
                     help="with --input-file: how many times faster than real time (default 1)")
    add_recognizer_arguments(p.add_argument_group("recognizer"))
    out = p.add_argument_group("output")
    out.add_argument("--save", metavar="DIR", help="keep the session's audio (wav) and transcript in DIR")
    out.add_argument("--plain", action="store_true", help="plain lines even on a terminal")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mic", help="live microphone transcription with exit-layer and load display",
                       description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=run)


def load_app(apps_dir: Path = APPS_DIR) -> ModuleType:
    """Import ``apps.micapp`` from the repository's ``apps/`` folder (by path: it is not installed)."""
    if "apps" not in sys.modules:
        init = apps_dir / "__init__.py"
        if not init.is_file():
            raise FileNotFoundError(f"the microphone app is not in {apps_dir}; `asr-ee mic` runs it from a "
                                    "clone of the repository (pip install -e .)")
        spec = importlib.util.spec_from_file_location("apps", init, submodule_search_locations=[str(apps_dir)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["apps"] = module
        spec.loader.exec_module(module)
    return importlib.import_module("apps.micapp")


def run(args: argparse.Namespace) -> int:
    try:
        app = load_app()
    except FileNotFoundError as e:
        print(f"asr-ee mic: {e}", file=sys.stderr)
        return 2
    return app.run(args)
