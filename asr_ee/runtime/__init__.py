"""The backends of the streaming step, behind one numpy surface.

:mod:`asr_ee.runtime.backend` names the backends, the surface the recognizer drives
(:class:`~asr_ee.runtime.backend.StreamingEncoder`) and which backend a model runs on;
:mod:`asr_ee.runtime.onnx_encoder` runs the graphs ``asr-ee export`` writes on onnxruntime (the
base install: no torch), :mod:`asr_ee.runtime.torch_encoder` the eager torch encoder (the
``train`` extra). Importing this package imports neither torch nor onnxruntime.
"""

from asr_ee.runtime.backend import BACKENDS, StreamingEncoder, load_model_for_backend

__all__ = ["BACKENDS", "StreamingEncoder", "load_model_for_backend"]
