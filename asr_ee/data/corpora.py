"""LibriSpeech and TED-LIUM 3 recipes, built on lhotse's own recipes, in the asr_ee layout.

Both check the corpus first (every listed audio file present and readable, transcripts well
formed) so that a missing or corrupt file is an error naming it, then let lhotse build the
manifests, normalize the transcripts with :func:`asr_ee.text.normalize_text` and hand over to the
shared stages of :mod:`asr_ee.data.prepare`. Split names are the corpus's own
(``train-clean-100``, ``dev-clean``... / ``train``, ``dev``, ``test``).

TED-LIUM's ``.sph`` files are read with libsndfile when ``sph2pipe`` is not installed (it is not
packaged for Debian); libsndfile reads the uncompressed NIST SPHERE files TED-LIUM 3 ships.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import soundfile as sf
from lhotse import CutSet, RecordingSet, SupervisionSet, fix_manifests
from lhotse.audio import audio_backend

from asr_ee.config import ConfigError, to_dict
from asr_ee.data.errors import CorpusFileError
from asr_ee.data.prepare import (PrepareConfig, Stages, check_output_config, manifest_path,
                                 prepare_from_manifests, save_manifest)
from asr_ee.text import normalize_text

__all__ = ["LibriSpeechConfig", "TedliumConfig", "check_librispeech_part", "check_tedlium_part",
           "clean_tedlium_text", "prepare_librispeech_corpus", "prepare_tedlium_corpus",
           "sphere_reader"]


@dataclasses.dataclass
class LibriSpeechConfig:
    """``corpus_dir`` holds ``LibriSpeech/<part>/...`` (or is that ``LibriSpeech`` directory)."""

    corpus_dir: str = ""
    train_parts: list[str] = dataclasses.field(default_factory=lambda: ["train-clean-100"])
    eval_parts: list[str] = dataclasses.field(
        default_factory=lambda: ["dev-clean", "dev-other", "test-clean", "test-other"])
    prepare: PrepareConfig = dataclasses.field(default_factory=PrepareConfig)


@dataclasses.dataclass
class TedliumConfig:
    """``corpus_dir`` is ``TEDLIUM_release-3`` (it holds ``legacy/{train,dev,test}/{sph,stm}``)."""

    corpus_dir: str = ""
    train_parts: list[str] = dataclasses.field(default_factory=lambda: ["train"])
    eval_parts: list[str] = dataclasses.field(default_factory=lambda: ["dev", "test"])
    prepare: PrepareConfig = dataclasses.field(default_factory=PrepareConfig)



def _utf8_lines(path: Path) -> list[str]:
    """The lines of a transcript file; a line that is not UTF-8 is a CorpusFileError naming the
    line, the column and the byte (never silently replaced: a replaced character becomes a wrong
    word in training and scoring)."""
    lines = []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise CorpusFileError(path, f"line {lineno}: not UTF-8 (byte 0x{raw[e.start]:02x} at column "
                                        f"{e.start + 1}); re-encode the file as UTF-8") from None
    return lines

def _audio_duration(path: Path) -> float:
    """Duration of an audio file; a missing or unreadable file is a :class:`CorpusFileError`."""
    if not path.is_file():
        raise CorpusFileError(path, "audio file is missing")
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise CorpusFileError(path, f"unreadable or corrupt audio ({e})") from e
    if info.frames <= 0:
        raise CorpusFileError(path, "audio file holds no samples")
    return info.frames / info.samplerate


def _corpus_root(corpus_dir: str, inner: str) -> Path:
    if not corpus_dir:
        raise ConfigError("corpus_dir is not set; pass corpus_dir=/path/to/corpus")
    root = Path(corpus_dir).resolve()
    if (root / inner).is_dir():
        root = root / inner
    if not root.is_dir():
        raise CorpusFileError(root, "corpus directory does not exist")
    return root


def check_librispeech_part(part_dir: Path) -> int:
    """Check one LibriSpeech part; returns its number of utterances.

    Raises:
        CorpusFileError: naming a missing part, malformed transcript line, missing or corrupt flac.
    """
    if not part_dir.is_dir():
        raise CorpusFileError(part_dir, "LibriSpeech part directory is missing")
    transcripts = sorted(part_dir.rglob("*.trans.txt"))
    if not transcripts:
        raise CorpusFileError(part_dir, "no <speaker>-<chapter>.trans.txt transcripts found")
    count = 0
    for trans in transcripts:
        for lineno, line in enumerate(_utf8_lines(trans), 1):
            fields = line.split(maxsplit=1)
            if not fields:
                continue
            if len(fields) < 2 or not re.fullmatch(r"\d+-\d+-\d+", fields[0]):
                raise CorpusFileError(trans, f"line {lineno}: expected '<spk>-<chapter>-<utt> TEXT'")
            _audio_duration(trans.parent / f"{fields[0]}.flac")
            count += 1
    return count


def _normalized(recordings: RecordingSet, supervisions: SupervisionSet,
                clean: Callable[[str], str]) -> tuple[RecordingSet, SupervisionSet]:
    """Normalize every transcript; drop supervisions left empty (and recordings left bare)."""
    segments = [s.transform_text(clean) for s in supervisions]
    segments = [s for s in segments if s.text]
    return fix_manifests(recordings, SupervisionSet.from_segments(segments))


def _save_split(output_dir: Path, split: str, recordings: RecordingSet,
                supervisions: SupervisionSet) -> None:
    if len(supervisions) == 0:
        raise CorpusFileError(split, "no usable utterances in this part")
    save_manifest(supervisions, manifest_path(output_dir, "supervisions", split))
    save_manifest(recordings, manifest_path(output_dir, "recordings", split))


def _prepare_corpus(cfg: LibriSpeechConfig | TedliumConfig, output_dir: Path, root: Path,
                    check_part: Callable[[str], object],
                    build: Callable[[list[str]], dict[str, dict[str, Any]]],
                    clean: Callable[[str], str], summary: dict[str, Any]) -> dict[str, CutSet]:
    """Check the parts, build lhotse manifests with ``build``, normalize them, run shared stages."""
    parts = list(cfg.train_parts) + list(cfg.eval_parts)
    check_output_config(output_dir, to_dict(cfg))
    stages = Stages(output_dir)

    def manifests() -> None:
        for part in parts:
            check_part(part)
        built = build(parts)
        for part in parts:
            _save_split(output_dir, part, *_normalized(built[part]["recordings"],
                                                       built[part]["supervisions"], clean))

    stages.run("manifests", manifests)
    return prepare_from_manifests(output_dir, stages, cfg.prepare, parts, cfg.train_parts,
                                  extra_summary={**summary, "corpus_dir": str(root)})


def prepare_librispeech_corpus(cfg: LibriSpeechConfig, output_dir: str | Path) -> dict[str, CutSet]:
    """LibriSpeech parts -> ``cuts_<part>.jsonl.gz`` (train parts speed-perturbed), noise, tokenizer."""
    from lhotse.recipes import prepare_librispeech

    root = _corpus_root(cfg.corpus_dir, "LibriSpeech")
    return _prepare_corpus(
        cfg, Path(output_dir).resolve(), root, lambda part: check_librispeech_part(root / part),
        lambda parts: prepare_librispeech(root, dataset_parts=parts, num_jobs=cfg.prepare.num_jobs),
        normalize_text, {"corpus": "librispeech"})


def check_tedlium_part(root: Path, part: str) -> int:
    """Check ``legacy/<part>/{sph,stm}``: every .stm has its .sph and vice versa, every audio file
    reads, every segment line parses and lies inside its audio. Returns the number of talks."""
    sph_dir, stm_dir = root / "legacy" / part / "sph", root / "legacy" / part / "stm"
    for directory in (sph_dir, stm_dir):
        if not directory.is_dir():
            raise CorpusFileError(directory, "TED-LIUM directory is missing")
    stms = sorted(stm_dir.glob("*.stm"))
    if not stms:
        raise CorpusFileError(stm_dir, "no .stm transcripts found")
    stm_names = {p.stem for p in stms}
    for sph in sorted(sph_dir.glob("*.sph")):
        if sph.stem not in stm_names:
            raise CorpusFileError(sph, f"has no matching {stm_dir / (sph.stem + '.stm')}")
    for stm in stms:
        duration = _audio_duration(sph_dir / f"{stm.stem}.sph")
        for lineno, line in enumerate(_utf8_lines(stm), 1):
            fields = line.split()
            if not fields:
                continue
            try:
                start, end = float(fields[3]), float(fields[4])
            except (IndexError, ValueError):
                raise CorpusFileError(stm, f"line {lineno}: expected "
                                      "'<talk> <channel> <speaker> <start> <end> <label> words'") from None
            if not 0 <= start < end <= duration + 0.5:
                raise CorpusFileError(stm, f"line {lineno}: segment {start}-{end} s is outside "
                                      f"the {duration:.2f} s of audio")
    return len(stms)


def clean_tedlium_text(text: str) -> str:
    """TED-LIUM transcript -> normalized text: drops ``<unk>`` and ``[NOISE]``-style tags and
    rejoins split contractions (``i 'm`` -> ``i'm``)."""
    text = re.sub(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}|\([^)]*\)", " ", text)
    text = re.sub(r"\s+'(?=[A-Za-z])", "'", text)
    return normalize_text(text)


@contextlib.contextmanager
def sphere_reader() -> Iterator[None]:
    """Read .sph with libsndfile when sph2pipe is absent (also in spawned worker processes).

    Wrap any code that loads TED-LIUM audio (not features) from its cuts in it.
    """
    if shutil.which("sph2pipe") is not None:
        yield
        return
    previous = os.environ.get("LHOTSE_AUDIO_BACKEND")
    os.environ["LHOTSE_AUDIO_BACKEND"] = "LibsndfileBackend"
    try:
        with audio_backend("LibsndfileBackend"):
            yield
    finally:
        if previous is None:
            os.environ.pop("LHOTSE_AUDIO_BACKEND", None)
        else:
            os.environ["LHOTSE_AUDIO_BACKEND"] = previous


def prepare_tedlium_corpus(cfg: TedliumConfig, output_dir: str | Path) -> dict[str, CutSet]:
    """TED-LIUM 3 (legacy split) -> ``cuts_{train,dev,test}.jsonl.gz`` (segments), noise, tokenizer."""
    from lhotse.recipes import prepare_tedlium

    root = _corpus_root(cfg.corpus_dir, "TEDLIUM_release-3")
    with sphere_reader():
        return _prepare_corpus(
            cfg, Path(output_dir).resolve(), root, lambda part: check_tedlium_part(root, part),
            lambda parts: prepare_tedlium(root, dataset_parts=parts, num_jobs=cfg.prepare.num_jobs),
            clean_tedlium_text, {"corpus": "tedlium",
                                 "audio_note": "read .sph audio inside asr_ee.data.corpora.sphere_reader()"})
