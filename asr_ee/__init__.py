"""asr_ee: streaming speech recognition with early-exit Conformer and Splitformer encoders."""

__version__ = "0.1.0"
