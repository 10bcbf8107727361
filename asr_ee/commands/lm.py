"""``asr-ee lm``: build the token n-gram language model that beam search fuses with CTC.

    asr-ee lm --data-dir data/offline_tts --output exp/small/lm.pt            # offline corpus
    asr-ee lm --tokenizer bpe.model --text lm_text.txt --exclude test.txt --output lm.pt

Text: every sentence of Debian's fortunes and WordNet examples (``--text`` files instead, one
sentence per line), minus every sentence that overlaps an evaluation sentence: with ``--data-dir``
the corpus's ``text/sentences_*.txt`` of every split but ``train``, plus any ``--exclude`` files.
The LM is tied to the tokenizer it was built with (its fingerprint is stored and checked on use).

Beside ``--output X/lm.pt`` (the Kneser-Ney counts) it writes ``X/lm.arpa.gz``, the same model as
ARPA, which beam search scores with KenLM, and ``X/lm.arpa.gz.json`` (tokenizer fingerprint, build
details, the sha256 of ``lm.pt``). ``--lm X/lm.pt`` finds the ARPA file beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm", help="build a token n-gram LM for shallow fusion in beam search",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, help="a prepared corpus: its tokenizer and evaluation sentences")
    p.add_argument("--tokenizer", type=Path, help="tokenizer .model (default: DATA/tokenizer/bpe.model)")
    p.add_argument("--text", type=Path, action="append", default=[],
                   help="LM text, one sentence per line (repeatable; default: fortunes + WordNet)")
    p.add_argument("--exclude", type=Path, action="append", default=[],
                   help="sentences the LM must not see, one per line (repeatable)")
    p.add_argument("--order", type=int, default=4, help="n-gram order over BPE tokens")
    p.add_argument("--min-count", type=int, default=2, help="prune n-grams (order >= 2) seen fewer times")
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=run)


def _lines(path: Path) -> list[str]:
    from asr_ee.config import ConfigError

    try:
        return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e


def run(args: argparse.Namespace) -> int:
    from asr_ee.config import ConfigError
    from asr_ee.data.errors import MissingPackageError
    from asr_ee.data.text_sources import lm_sentences
    from asr_ee.data.tokenizer import Tokenizer
    from asr_ee.decoding.kenlm import write_lm_files
    from asr_ee.decoding.lm import build_ngram
    from asr_ee.text import normalize_text

    try:
        if args.data_dir is None and args.tokenizer is None:
            raise ConfigError("give --data-dir (a prepared corpus) or --tokenizer")
        exclude_files = list(args.exclude)
        if args.data_dir is not None:
            text_dir = args.data_dir / "text"
            evals = sorted(p for p in text_dir.glob("sentences_*.txt") if p.stem != "sentences_train")
            if not evals:
                raise ConfigError(f"{text_dir} has no evaluation sentences (sentences_<split>.txt): "
                                  "is --data-dir a prepared corpus?")
            exclude_files += evals
        tokenizer = Tokenizer(args.tokenizer or args.data_dir / "tokenizer" / "bpe.model")
        exclude = [normalize_text(s) for f in exclude_files for s in _lines(f)]
        extra = [normalize_text(s) for f in args.text for s in _lines(f)] if args.text else None
        sentences, counts = lm_sentences(exclude, given=extra)
        lm = build_ngram(tokenizer.encode_batch(sentences), tokenizer.vocab_size, order=args.order,
                         min_count=args.min_count, blank=tokenizer.blank_id)
        lm.info.update(counts, tokenizer=tokenizer.fingerprint,
                       text=[str(p) for p in args.text] or ["fortunes", "wordnet"],
                       excluded_files=[str(p) for p in exclude_files])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        arpa = write_lm_files(lm, args.output)
    except (ConfigError, MissingPackageError, FileNotFoundError, ValueError) as e:
        print(f"asr-ee lm: {e}", file=sys.stderr)
        return 2
    print(f"{args.output}: {args.order}-gram over {tokenizer.vocab_size} tokens, {lm.num_ngrams():,} n-grams "
          f"from {counts['kept']:,} sentences ({counts['words']:,} words); "
          f"{counts['overlapping_excluded']:,} overlapping {len(exclude):,} excluded sentences left out; "
          f"KenLM reads {arpa}")
    return 0
