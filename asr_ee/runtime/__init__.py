"""Runtimes of the streaming step other than eager PyTorch.

:mod:`asr_ee.runtime.backend` names the backends and the surface the recognizer drives
(:class:`~asr_ee.runtime.backend.StreamingEncoder`); :mod:`asr_ee.runtime.onnx_encoder` runs the
graphs ``asr-ee export`` writes on onnxruntime (``pip install 'asr_ee[onnx]'``). Importing this
package imports neither torch nor onnxruntime.
"""

from asr_ee.runtime.backend import BACKENDS, StreamingEncoder, load_model_for_backend

__all__ = ["BACKENDS", "StreamingEncoder", "load_model_for_backend"]
