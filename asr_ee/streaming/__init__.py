"""Streaming recognition: chunk-wise early-exit encoding with carried state, per-chunk exits
chosen by the exit criterion under a live compute-load cap, incremental CTC decoding, endpoints.

The API follows sherpa-onnx: :class:`Recognizer` (model + settings) and :class:`Stream` (one input).
"""

from asr_ee.streaming.config import ControllerConfig, EndpointConfig, EndpointRule, StreamingConfig
from asr_ee.streaming.controller import CpuLoadMonitor, LoadController, LoadReading
from asr_ee.streaming.recognizer import Recognizer
from asr_ee.streaming.simulate import run_stream, run_streams
from asr_ee.streaming.stream import ChunkRecord, RecognitionResult, Segment, Stream

__all__ = ["Recognizer", "Stream", "StreamingConfig", "EndpointConfig", "EndpointRule", "ControllerConfig",
           "RecognitionResult", "ChunkRecord", "Segment", "LoadController", "LoadReading", "CpuLoadMonitor",
           "run_stream", "run_streams"]
