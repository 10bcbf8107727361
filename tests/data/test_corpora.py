"""LibriSpeech and TED-LIUM 3 recipes on tiny trees in each corpus's real layout and formats.

The audio is spoken by espeak-ng (LibriSpeech: one 16 kHz FLAC per utterance; TED-LIUM: one NIST
SPHERE file per talk with the utterances at the times its .stm file gives).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, validate

from asr_ee.config import from_dict
from asr_ee.data.corpora import (LibriSpeechConfig, TedliumConfig, clean_tedlium_text,
                                 prepare_librispeech_corpus, prepare_tedlium_corpus,
                                 sphere_reader)
from asr_ee.data.errors import CorpusFileError
from asr_ee.data.tokenizer import Tokenizer
from asr_ee.data.tts import SynthesisJob, Voice, synthesize_batch
from asr_ee.features import NUM_MEL_BINS, num_frames

PREPARE = {"num_jobs": 1, "tokenizer_vocab_size": 40,
           "noise": {"kinds": ["pink"], "seconds_per_kind": 2.0, "window_seconds": 1.0}}
LIBRISPEECH = {  # part -> (speaker, chapter) -> transcripts, as LibriSpeech writes them
    "train-clean-100": {(19, 198): ["NORTHANGER ABBEY", "IT WAS A DARK AND STORMY NIGHT",
                                    "SHE DIDN'T KNOW WHAT TO SAY"],
                        (26, 495): ["THE BOOK WAS ON THE TABLE", "HE WALKED HOME ALONE"]},
    "dev-clean": {(84, 121123): ["GOOD MORNING TO YOU ALL", "WHERE IS THE STATION"]},
}
TEDLIUM = {  # part -> talk -> stm transcripts, as TED-LIUM 3 writes them
    "train": {"AlGore_2009": ["i 'm going to talk about the climate", "thank you very much"],
              "JaneDoe_2012X": ["we <unk> need a new idea", "it 's not that hard to see"]},
    "dev": {"JohnSmith_2010": ["so here is the thing", "nobody knew what to do"]},
    "test": {"MaryJones_2011P": ["let me show you a picture", "that 's all for today"]},
}


def _speak(texts: list[str], paths: list[Path], voice: Voice) -> None:
    jobs = [SynthesisJob(str(p), t.lower(), voice, str(p)) for t, p in zip(texts, paths)]
    assert all(r.error is None for r in synthesize_batch(jobs))


@pytest.fixture(scope="module")
def librispeech_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("librispeech")
    for part, chapters in LIBRISPEECH.items():
        for (speaker, chapter), texts in chapters.items():
            folder = root / "LibriSpeech" / part / str(speaker) / str(chapter)
            folder.mkdir(parents=True)
            ids = [f"{speaker}-{chapter}-{i:04d}" for i in range(len(texts))]
            _speak(texts, [folder / f"{u}.flac" for u in ids],
                   Voice.make("espeak", f"en-us+m{speaker % 7 + 1}", speed=170))
            (folder / f"{speaker}-{chapter}.trans.txt").write_text(
                "".join(f"{u} {t}\n" for u, t in zip(ids, texts)))
    return root


def _stm_line(talk: str, start: float, end: float, words: str) -> str:
    return f"{talk} 1 {talk} {start:.2f} {end:.2f} <o,f0,male> {words}\n"


def _write_talk(folder: Path, talk: str, texts: list[str]) -> None:
    tmp = folder / "tmp"
    tmp.mkdir(exist_ok=True)
    paths = [tmp / f"{i}.flac" for i in range(len(texts))]
    _speak([clean_tedlium_text(t) for t in texts], paths, Voice.make("flite", "slt"))
    pieces, stm, clock = [np.zeros(8000)], "", 0.5
    stm += _stm_line(talk, 0.0, 0.5, "ignore_time_segment_in_scoring")
    for path, text in zip(paths, texts):
        audio, _ = sf.read(path)
        stm += _stm_line(talk, clock, clock + len(audio) / 16000, text)
        clock += len(audio) / 16000 + 0.7
        pieces += [audio, np.zeros(11200)]
    sf.write(folder / "sph" / f"{talk}.sph", np.concatenate(pieces), 16000, format="NIST",
             subtype="PCM_16")
    (folder / "stm" / f"{talk}.stm").write_text(stm)
    shutil.rmtree(tmp)


@pytest.fixture(scope="module")
def tedlium_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tedlium") / "TEDLIUM_release-3"
    for part, talks in TEDLIUM.items():
        folder = root / "legacy" / part
        (folder / "sph").mkdir(parents=True)
        (folder / "stm").mkdir()
        for talk, texts in talks.items():
            _write_talk(folder, talk, texts)
    return root


def _check_corpus(output_dir: Path, splits: dict[str, int], train: str) -> None:
    summary = json.loads((output_dir / "corpus.json").read_text())
    assert summary["train_splits"] == [train]
    tokenizer = Tokenizer(output_dir / "tokenizer" / "bpe.model")
    for split, count in splits.items():
        cuts = CutSet.from_file(output_dir / f"cuts_{split}.jsonl.gz").to_eager()
        validate(cuts, read_data=True)
        assert len(cuts) == count * (3 if split == train else 1)
        assert summary["splits"][split]["utterances_before_speed_perturbation"] == count
        for cut in list(cuts)[:4]:
            feats, audio = cut.load_features(), cut.load_audio()
            assert feats.shape == (num_frames(audio.shape[1]), NUM_MEL_BINS)
            text = cut.supervisions[0].text
            assert text and text == text.lower()
            if split == train:  # the tokenizer saw only training text
                assert tokenizer.decode(tokenizer.encode(text)) == text
    assert len(CutSet.from_file(output_dir / "cuts_noise.jsonl.gz")) == 2


def test_librispeech_end_to_end(librispeech_tree: Path, tmp_path: Path) -> None:
    cfg = from_dict(LibriSpeechConfig, {"corpus_dir": str(librispeech_tree),
                                        "train_parts": ["train-clean-100"],
                                        "eval_parts": ["dev-clean"], "prepare": PREPARE})
    cuts = prepare_librispeech_corpus(cfg, tmp_path)
    _check_corpus(tmp_path, {"train-clean-100": 5, "dev-clean": 2}, "train-clean-100")
    dev = {c.id: c.supervisions[0] for c in cuts["dev-clean"]}
    assert dev["84-121123-0001"].text == "where is the station"
    assert dev["84-121123-0001"].speaker == "84"
    train_texts = {c.supervisions[0].text for c in cuts["train-clean-100"]}
    assert "she didn't know what to say" in train_texts


def _librispeech_cfg(root: Path) -> LibriSpeechConfig:
    return from_dict(LibriSpeechConfig, {"corpus_dir": str(root), "train_parts": ["train-clean-100"],
                                         "eval_parts": ["dev-clean"], "prepare": PREPARE})


@pytest.mark.parametrize("damage", ["missing", "corrupt", "bad_line", "missing_part", "not_utf8"])
def test_librispeech_bad_files_are_named(damage: str, librispeech_tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(librispeech_tree, root)
    chapter = root / "LibriSpeech" / "dev-clean" / "84" / "121123"
    victim = {"missing": chapter / "84-121123-0001.flac", "corrupt": chapter / "84-121123-0001.flac",
              "bad_line": chapter / "84-121123.trans.txt", "not_utf8": chapter / "84-121123.trans.txt",
              "missing_part": root / "LibriSpeech" / "dev-clean"}[damage]
    if damage == "missing":
        victim.unlink()
    elif damage == "corrupt":
        victim.write_bytes(b"fLaC this is not really flac data")
    elif damage == "bad_line":
        with victim.open("a") as f:
            f.write("84-121123-0002\n")
    elif damage == "not_utf8":
        with victim.open("ab") as f:
            f.write(b"84-121123-0009 CAF\xe9 AU LAIT\n")  # Latin-1, not UTF-8
    else:
        shutil.rmtree(victim)
    with pytest.raises(CorpusFileError) as error:
        prepare_librispeech_corpus(_librispeech_cfg(root), tmp_path / "out")
    assert error.value.path == str(victim) and str(victim) in str(error.value)
    if damage == "not_utf8":
        assert "not UTF-8 (byte 0xe9 at column 19)" in str(error.value)
    assert not (tmp_path / "out" / ".done_manifests").exists()


def test_tedlium_text_cleaning() -> None:
    assert clean_tedlium_text("i 'm here <unk> and {NOISE} it 's [NOISE] ok") == "i'm here and it's ok"


def test_tedlium_end_to_end(tedlium_tree: Path, tmp_path: Path) -> None:
    cfg = from_dict(TedliumConfig, {"corpus_dir": str(tedlium_tree.parent),
                                    "prepare": {**PREPARE, "num_jobs": 2}})
    cuts = prepare_tedlium_corpus(cfg, tmp_path)
    with sphere_reader():  # sph2pipe is not packaged for Debian: libsndfile reads the audio
        _check_corpus(tmp_path, {"train": 4, "dev": 2, "test": 2}, "train")
    train = [c for c in cuts["train"] if not c.recording.transforms]
    texts = {c.supervisions[0].text for c in train}
    assert texts == {"i'm going to talk about the climate", "thank you very much",
                     "we need a new idea", "it's not that hard to see"}
    stm = (tedlium_tree / "legacy" / "train" / "stm" / "AlGore_2009.stm").read_text().splitlines()
    start, end = float(stm[1].split()[3]), float(stm[1].split()[4])
    first = next(c for c in train if c.recording_id == "AlGore_2009" and c.start == pytest.approx(start))
    assert first.duration == pytest.approx(end - start, abs=0.01)


@pytest.mark.parametrize("damage", ["missing_sph", "segment_outside_audio", "missing_stm_dir"])
def test_tedlium_bad_files_are_named(damage: str, tedlium_tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "TEDLIUM_release-3"
    shutil.copytree(tedlium_tree, root)
    dev = root / "legacy" / "dev"
    if damage == "missing_sph":
        victim = dev / "sph" / "JohnSmith_2010.sph"
        victim.unlink()
    elif damage == "segment_outside_audio":
        victim = dev / "stm" / "JohnSmith_2010.stm"
        with victim.open("a") as f:
            f.write(_stm_line("JohnSmith_2010", 500.0, 503.0, "far too late"))
    else:
        victim = dev / "stm"
        shutil.rmtree(victim)
    cfg = from_dict(TedliumConfig, {"corpus_dir": str(root), "prepare": PREPARE})
    with pytest.raises(CorpusFileError) as error:
        prepare_tedlium_corpus(cfg, tmp_path / "out")
    assert error.value.path == str(victim)
    assert not (tmp_path / "out" / ".done_manifests").exists()
