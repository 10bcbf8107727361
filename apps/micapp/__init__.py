"""Live microphone transcription (GitHub issue 6): the partial text, finished segments and, per
chunk, the exit layer, the load controller's cap and the CPU load; a summary at the end.

Modules: ``sources`` (microphone and paced file input), ``session`` (the decoding thread),
``display`` (what is printed), ``main`` (options to a running session).
"""

from apps.micapp.main import Environment, main, run

__all__ = ["run", "main", "Environment"]
