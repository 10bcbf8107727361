"""The token LM at decode time: an ARPA file scored by KenLM (the copy inside flashlight-text).

:class:`TokenLM` is what beam search fuses (:class:`~asr_ee.decoding.ctc.BeamStreamDecoder`). It
needs neither torch nor the LM's counts: an ARPA file (plain or gzipped) and the information
written beside it (:func:`~asr_ee.decoding.arpa.sidecar_path`: the tokenizer fingerprint the LM is
checked against). ``asr-ee lm --output X/lm.pt`` writes ``X/lm.arpa.gz`` beside the counts
(:func:`write_lm_files`), and :func:`load_token_lm` given ``X/lm.pt`` reads that ARPA file when it
was written from this very ``lm.pt`` (its sha256 is in the information). A ``.pt`` LM without
one (built before the ARPA files existed, or replaced since) is converted once and cached by
content (the conversion reads torch). An :class:`~asr_ee.decoding.lm.NgramLM` in memory becomes a
TokenLM with :func:`as_token_lm` (the decoders call it: tests hand them fresh LMs).

KenLM scores in log10; :meth:`TokenLM.log_prob` and :meth:`TokenLM.score_tokens` give natural logs,
the unit of the CTC posteriors and of ``lm_weight``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from asr_ee.config import ConfigError
from asr_ee.decoding.arpa import ARPA_FORMAT, read_sidecar, sidecar_path, token_word, write_arpa

if TYPE_CHECKING:
    from asr_ee.data.tokenizer import Tokenizer
    from asr_ee.decoding.lm import NgramLM

__all__ = ["TokenLM", "load_lm", "load_token_lm", "as_token_lm", "convert_to_arpa", "write_lm_files", "arpa_beside",
           "lm_files", "lm_cache_dir"]

LN_10 = math.log(10.0)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """KenLM prints a progress bar on the C++ side while it reads an ARPA file: keep it off the terminal."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture and other file-less streams
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class TokenLM:
    """A token n-gram LM in an ARPA file (words are token ids), loaded into KenLM on first use.

    Attributes:
        path: the ARPA file.
        info: what was written beside it (tokenizer fingerprint, vocabulary size, order, build details).
    """

    def __init__(self, path: str | Path, info: dict) -> None:
        self.path = Path(path)
        self.info = info
        self._kenlm = None

    @property
    def vocab_size(self) -> int:
        return int(self.info["vocab_size"])

    @property
    def order(self) -> int:
        return int(self.info["order"])

    def kenlm(self):  # -> flashlight.lib.text.decoder.kenlm.KenLM
        """The KenLM model (loaded once; decoders share it), indexed by token id."""
        if self._kenlm is None:
            from flashlight.lib.text.decoder.kenlm import KenLM
            from flashlight.lib.text.dictionary import Dictionary

            words = Dictionary([token_word(t) for t in range(self.vocab_size)])
            try:
                with _quiet_stderr():
                    self._kenlm = KenLM(str(self.path), words)
            except RuntimeError as e:
                raise ConfigError(f"KenLM cannot read {self.path}: {e}") from e
        return self._kenlm

    def log_prob(self, context: Sequence[int], token: int | None) -> float:
        """ln P(token | <s> context) (``token`` None: the end of the sentence)."""
        lm = self.kenlm()
        state = lm.start(False)
        for t in context:
            state, _ = lm.score(state, t)
        _, score = lm.finish(state) if token is None else lm.score(state, token)
        return score * LN_10

    def score_tokens(self, tokens: Sequence[int], with_end: bool = True) -> float:
        """ln P of a token sequence from the sentence start (optionally with the end symbol)."""
        lm = self.kenlm()
        state, total = lm.start(False), 0.0
        for t in tokens:
            state, score = lm.score(state, t)
            total += score
        if with_end:
            total += lm.finish(state)[1]
        return total * LN_10

    def check_tokenizer(self, tokenizer: "Tokenizer") -> None:
        """Raise ConfigError unless this LM was built with ``tokenizer`` (same pieces)."""
        from asr_ee.data.tokenizer import check_lm_tokenizer

        check_lm_tokenizer(self.vocab_size, self.info.get("tokenizer"), tokenizer)


def lm_cache_dir() -> Path:
    """Where converted LMs are kept: ``$ASR_EE_CACHE/lm``, else ``$XDG_CACHE_HOME/asr_ee/lm``
    (``~/.cache/asr_ee/lm``)."""
    root = os.environ.get("ASR_EE_CACHE")
    if root:
        return Path(root) / "lm"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asr_ee" / "lm"


def arpa_beside(pt_path: str | Path) -> Path:
    """The ARPA file ``asr-ee lm`` writes beside a ``.pt`` LM: ``X/lm.pt`` -> ``X/lm.arpa.gz``."""
    pt_path = Path(pt_path)
    return pt_path.with_name(pt_path.stem + ".arpa.gz")


def lm_files(pt_path: str | Path) -> list[Path]:
    """The files an LM at ``pt_path`` decodes from, for copying it elsewhere (an export): the
    ``.pt`` and, where they exist, the ARPA file beside it and its information. Copied together,
    the ARPA file still belongs to the ``.pt`` (same sha256), so no conversion and no torch."""
    arpa = arpa_beside(pt_path)
    return [Path(pt_path)] + [f for f in (arpa, sidecar_path(arpa)) if f.is_file()]


def write_lm_files(lm: "NgramLM", pt_path: str | Path) -> Path:
    """Save ``lm``'s counts at ``pt_path`` and the same model as ARPA beside it (:func:`arpa_beside`,
    with the information that ties it to that ``.pt``). Returns the ARPA file."""
    _check_order(lm, pt_path)
    pt_path = Path(pt_path)
    lm.save(pt_path)
    return write_arpa(lm, arpa_beside(pt_path), info={"source_sha256": _sha256(pt_path)})


def convert_to_arpa(pt_path: str | Path, output: str | Path) -> Path:
    """Write the ``.pt`` LM at ``pt_path`` (:func:`asr_ee.decoding.lm.load_ngram`) as ARPA at ``output``
    (gzipped when it ends in ``.gz``), with its information and the source's sha256 beside it."""
    from asr_ee.decoding.lm import load_ngram  # reads torch: only the conversion needs it

    pt_path = Path(pt_path)
    lm = load_ngram(pt_path)
    _check_order(lm, pt_path)
    return write_arpa(lm, output, info={"converted_from": str(pt_path), "source_sha256": _sha256(pt_path)})


def as_token_lm(lm: "TokenLM | NgramLM") -> TokenLM:
    """``lm`` as a TokenLM: an NgramLM is written as ARPA to a temporary folder, loaded into KenLM
    (which keeps it in memory) and the folder removed; the result is kept on the NgramLM, so every
    decoder built with it shares one KenLM model."""
    if isinstance(lm, TokenLM):
        return lm
    if getattr(lm, "_token_lm", None) is None:
        _check_order(lm, "the language model")
        folder = Path(tempfile.mkdtemp(prefix="asr_ee_lm_"))
        try:
            path = write_arpa(lm, folder / "lm.arpa")
            token_lm = TokenLM(path, read_sidecar(path))
            token_lm.kenlm()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        lm._token_lm = token_lm
    return lm._token_lm


def _check_order(lm: "NgramLM", where: str | Path) -> None:
    if lm.order < 2:
        raise ConfigError(f"{where}: KenLM needs an order of at least 2 (this LM has {lm.order})")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_token_lm(path: str | Path, *, cache_dir: str | Path | None = None) -> TokenLM:
    """The LM at ``path``: an ARPA file written by ``asr-ee lm`` (``.arpa`` or ``.arpa.gz``, its
    information beside it), or a ``.pt`` LM: the ARPA file beside it (:func:`arpa_beside`) when it
    was written from this ``.pt``, else a conversion made once into ``cache_dir``
    (:func:`lm_cache_dir`) under the ``.pt``'s content hash. Clear errors for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"language model {path} not found (build one with `asr-ee lm` or drop --lm)")
    if path.suffix == ".pt":
        digest = _sha256(path)
        beside = arpa_beside(path)
        if beside.is_file() and _is_arpa_of(beside, digest):
            path = beside
        else:
            cache = Path(cache_dir) if cache_dir is not None else lm_cache_dir()
            arpa = cache / f"lm-{digest[:20]}.arpa.gz"
            if not arpa.is_file() or not _is_arpa_of(arpa, digest):
                print(f"converting {path} to ARPA for KenLM (once; cached as {arpa})", file=sys.stderr)
                convert_to_arpa(path, arpa)
            path = arpa
    info = read_sidecar(path)
    if info.get("format") != ARPA_FORMAT:
        raise ConfigError(f"{path} has no asr_ee LM information beside it ({path.name}.json, format {ARPA_FORMAT}); "
                          "write ARPA LMs with `asr-ee lm`")
    return TokenLM(path, info)


def _is_arpa_of(arpa: Path, pt_sha256: str) -> bool:
    info = read_sidecar(arpa)
    return info.get("format") == ARPA_FORMAT and info.get("source_sha256") == pt_sha256


def load_lm(path: str | Path) -> TokenLM:
    """The LM to decode with: KenLM on the ARPA file of the LM at ``path`` (an ``lm.pt`` written by
    ``asr-ee lm``, whose ``lm.arpa.gz`` sits beside it, or an ``.arpa`` file itself); see
    :func:`load_token_lm`. Clear errors for a missing or foreign file."""
    return load_token_lm(path)

