"""``asr-ee mic``: live transcription from a microphone (or a file at real-time pace), showing the
partial text, finished segments and, per chunk, the exit layer, the load controller's cap and the
CPU load. The program is :mod:`asr_ee.micapp`; this module declares its options and runs it."""

from __future__ import annotations

import argparse

from asr_ee.micapp.options import DESCRIPTION, add_arguments

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mic", help="live microphone transcription with exit-layer and load display",
                       description=DESCRIPTION, add_help=False)
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr_ee.micapp.app import run as run_app

    return run_app(args)
