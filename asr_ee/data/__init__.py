"""Corpus preparation: text sources, TTS engines, tokenizer, recipes and the shared stages.

Every recipe writes the same layout (see :mod:`asr_ee.data.prepare`): ``cuts_<split>.jsonl.gz``
with fbank features, ``cuts_noise.jsonl.gz``, ``tokenizer/bpe.model`` and ``corpus.json``.
Submodules are imported on use; this package imports nothing heavy.
"""
