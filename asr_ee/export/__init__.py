"""Export of trained models to runtimes other than PyTorch (ONNX: :mod:`asr_ee.export.onnx`).

Imports nothing on its own: ``asr_ee.export.onnx`` needs torch and onnx (``pip install 'asr_ee[train]'``).
"""
