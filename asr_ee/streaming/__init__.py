"""Streaming recognition: chunk-wise early-exit encoding with carried state, per-chunk exits
chosen by the exit criterion under a live compute-load cap, incremental CTC decoding, endpoints.

The API follows sherpa-onnx: :class:`Recognizer` (model + settings) and :class:`Stream` (one input).
The names below are imported on first use, so that the command line's parsers can read
:mod:`asr_ee.streaming.options` without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Recognizer", "Stream", "StreamingConfig", "EndpointConfig", "EndpointRule", "ControllerConfig",
           "RecognitionResult", "ChunkRecord", "Segment", "Word", "LoadController", "LoadReading", "CpuLoadMonitor",
           "run_stream", "run_streams"]

_HOMES = {
    "StreamingConfig": "config", "EndpointConfig": "config", "EndpointRule": "config", "ControllerConfig": "config",
    "LoadController": "controller", "LoadReading": "controller", "CpuLoadMonitor": "controller",
    "Recognizer": "recognizer", "run_stream": "simulate", "run_streams": "simulate",
    "Stream": "stream", "RecognitionResult": "stream", "ChunkRecord": "stream", "Segment": "stream", "Word": "stream",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"asr_ee.streaming.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'asr_ee.streaming' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
