"""Live microphone transcription (``asr-ee mic``): the partial text, finished segments and, per
chunk, the exit layer, the load controller's cap and the CPU load; a summary at the end.

Modules: ``options`` (the command line), ``sources`` (microphone and paced file input),
``session`` (the decoding thread), ``display`` (what is printed), ``app`` (options to a running
session). The app builds its recognizer with the library's factory
(:mod:`asr_ee.streaming.options`), as ``asr-ee transcribe`` and ``asr_ee.Recognizer`` do.
``run``, ``main`` and ``Environment`` are imported on first use (the options stay cheap).
"""

from __future__ import annotations

from typing import Any

__all__ = ["run", "main", "Environment"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from asr_ee.micapp import app

        return getattr(app, name)
    raise AttributeError(f"module 'asr_ee.micapp' has no attribute {name!r}")
