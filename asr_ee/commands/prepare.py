"""``asr-ee prepare {offline,librispeech,tedlium} --config YAML --output-dir DIR [key=value ...]``.

Builds a corpus in the layout the trainer reads (see :mod:`asr_ee.data.prepare`) and prints what
it built. Finished stages are skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Callable

from asr_ee.config import ConfigError, apply_overrides, load_yaml
from asr_ee.data.errors import DataError

__all__ = ["register", "run"]

CORPORA = ("offline", "natural", "librispeech", "tedlium")


def _recipe(corpus: str) -> tuple[type, Callable[[Any, Path], Any]]:
    """Config class and prepare function of ``corpus`` (imported only when used)."""
    if corpus == "offline":
        from asr_ee.data.offline_corpus import OfflineCorpusConfig, prepare_offline_corpus
        return OfflineCorpusConfig, prepare_offline_corpus
    if corpus == "natural":
        from asr_ee.data.natural_corpus import NaturalCorpusConfig, prepare_natural_corpus
        return NaturalCorpusConfig, prepare_natural_corpus
    from asr_ee.data import corpora
    if corpus == "librispeech":
        return corpora.LibriSpeechConfig, corpora.prepare_librispeech_corpus
    return corpora.TedliumConfig, corpora.prepare_tedlium_corpus


_HELP = {"offline": "speech synthesized from Debian TTS engines and text packages",
         "natural": "beside an offline corpus: Praat pseudo-speakers, the Piper voice, the unseen natural split",
         "librispeech": "an unpacked LibriSpeech (corpus_dir=...)",
         "tedlium": "an unpacked TED-LIUM release 3 (corpus_dir=...)"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare", help="build a corpus: manifests, fbank features, noise, tokenizer",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    corpora = parser.add_subparsers(dest="corpus", metavar="CORPUS")
    corpora.required = True
    for corpus in CORPORA:
        sub = corpora.add_parser(corpus, help=_HELP[corpus])
        sub.add_argument("--config", required=True, type=Path, help="recipe YAML (recipes/*/conf)")
        sub.add_argument("--output-dir", required=True, type=Path)
        sub.add_argument("--quiet", action="store_true", help="log warnings only")
        sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                         help="config overrides, e.g. seed=3 prepare.num_jobs=2")
        sub.set_defaults(func=run)


def _report(summary: dict[str, Any], output_dir: Path) -> None:
    print(f"corpus ready in {output_dir}")
    for split, stats in summary["splits"].items():
        print(f"  cuts_{split}.jsonl.gz: {stats['utterances']} cuts, {stats['hours']:.2f} h, "
              f"{stats['speakers']} speakers")
    if "noise" in summary:
        print(f"  cuts_noise.jsonl.gz: {summary['noise']['cuts']} cuts, {summary['noise']['hours']:.2f} h")
        print(f"  tokenizer/bpe.model; corpus.json (build {summary['build_wall_seconds']:.0f} s, "
              f"{summary['disk_bytes'] / 1e6:.1f} MB)")
    else:
        print(f"  corpus.json (build {summary['build_wall_seconds']:.0f} s)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config_cls, prepare = _recipe(args.corpus)
    try:
        cfg = apply_overrides(load_yaml(config_cls, args.config), args.overrides)
        prepare(cfg, args.output_dir)
    except ConfigError as e:
        print(f"error: {e}")
        return 2
    except DataError as e:
        print(f"error: {e}")
        return 1
    summary = json.loads((args.output_dir / "corpus.json").read_text())
    _report(summary, args.output_dir)
    return 0
