"""asr_ee: streaming speech recognition with early-exit Conformer and Splitformer encoders.

``from asr_ee import Recognizer`` gives the recognizer of the Python API (:mod:`asr_ee.api`); it is
imported on first use, so importing ``asr_ee`` (the command line's parser) stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Recognizer", "Transcript", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Recognizer", "Transcript"):
        from asr_ee import api

        return getattr(api, name)
    raise AttributeError(f"module 'asr_ee' has no attribute {name!r}")
