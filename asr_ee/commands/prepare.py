"""``asr-ee prepare CORPUS --config YAML --output-dir DIR [key=value ...]``.

Builds a corpus in the layout the trainer reads (see :mod:`asr_ee.data.prepare`) and prints what
it built. Finished stages are skipped on a rerun.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from asr_ee.config import ConfigError, apply_overrides, load_yaml
from asr_ee.data.errors import DataError

__all__ = ["CORPORA", "Corpus", "register", "run"]

@dataclass(frozen=True)
class Corpus:
    """One buildable corpus: its help line and where its config class and prepare function live
    (imported only when that corpus is built, so ``--help`` stays cheap)."""

    help: str
    module: str
    config_class: str
    prepare: str

    def load(self) -> tuple[type, Callable[[Any, Path], Any]]:
        module = importlib.import_module(self.module)
        return getattr(module, self.config_class), getattr(module, self.prepare)


# The one registry of corpora: argparse's choices and help, and dispatch read it. A new corpus is
# a prepare function in asr_ee/data/, an entry here and a recipe folder.
CORPORA: dict[str, Corpus] = {
    "offline": Corpus("speech synthesized from Debian TTS engines and text packages",
                      "asr_ee.data.offline_corpus", "OfflineCorpusConfig", "prepare_offline_corpus"),
    "natural": Corpus("beside an offline corpus: Praat pseudo-speakers, the Piper voice, the unseen natural split",
                      "asr_ee.data.natural_corpus", "NaturalCorpusConfig", "prepare_natural_corpus"),
    "kokoro": Corpus("beside an offline corpus: Kokoro's voices blended into speakers, one held out",
                     "asr_ee.data.kokoro_corpus", "KokoroCorpusConfig", "prepare_kokoro_corpus"),
    "native": Corpus("beside an offline corpus: native English voices (Hibari, a natural neural voice; SVOX Pico) as many speakers",
                     "asr_ee.data.native_corpus", "NativeCorpusConfig", "prepare_native_corpus"),
    "wide": Corpus("beside an offline corpus: its engines on text it never had (many words, each heard many times)",
                   "asr_ee.data.wide_corpus", "WideCorpusConfig", "prepare_wide_corpus"),
    "librispeech": Corpus("an unpacked LibriSpeech (corpus_dir=...)",
                          "asr_ee.data.corpora", "LibriSpeechConfig", "prepare_librispeech_corpus"),
    "tedlium": Corpus("an unpacked TED-LIUM release 3 (corpus_dir=...)",
                      "asr_ee.data.corpora", "TedliumConfig", "prepare_tedlium_corpus"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare", help="build a corpus: manifests, fbank features, noise, tokenizer",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    corpora = parser.add_subparsers(dest="corpus", metavar="CORPUS")
    corpora.required = True
    for name, corpus in CORPORA.items():
        sub = corpora.add_parser(name, help=corpus.help)
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
    config_cls, prepare = CORPORA[args.corpus].load()
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
