"""The microphone app's command-line options, shared by ``asr-ee mic`` and ``python apps/mic.py``.

Cheap to import (no torch): the command line builds its parsers from it.
"""

from __future__ import annotations

import argparse

from asr_ee.streaming.options import HelpWithModelDefaults, add_recognizer_arguments

__all__ = ["DESCRIPTION", "add_arguments", "build_parser"]

DESCRIPTION = ("Live transcription from a microphone, or from a file at real-time pace (--input-file), "
               "showing the partial text, finished segments and, per chunk, the exit layer, the load "
               "controller's cap and the CPU load; a summary at the end. Ctrl-C stops and prints the "
               "transcript.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The app's options; ``p`` must be created with ``add_help=False`` (the help added here shows
    the model's own defaults)."""
    p.add_argument("-h", "--help", action=HelpWithModelDefaults)
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


def build_parser(prog: str = "asr-ee mic") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, add_help=False)
    add_arguments(parser)
    return parser
