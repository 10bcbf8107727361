"""The input forms ``evaluate`` and ``transcribe`` accept, read into one list of utterances.

* a lhotse ``CutSet`` manifest (``.jsonl.gz``/``.jsonl``): audio and reference text of each cut;
* ``--audio-dir DIR --transcripts FILE``: FILE is a Kaldi ``text`` file (``utt_id word word ...``,
  audio found as ``DIR/utt_id.<ext>``) or a TSV whose first column is an audio path relative to DIR
  and whose last column is the transcript;
* audio files, folders of them and ``-`` for stdin (no reference).

Problems with one utterance (missing file named by a transcript line, say) do not stop the
others: the utterance carries an ``error`` and is reported as failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from asr_ee.audio import AudioError, read_audio, to_model_rate

if TYPE_CHECKING:
    import torch

__all__ = ["Utterance", "InputError", "from_cuts", "from_transcripts", "from_files", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".sph")


class InputError(ValueError):
    """The input as a whole cannot be read (missing manifest, unreadable transcript file)."""


@dataclass
class Utterance:
    """One thing to recognize. ``load_samples()`` returns 16 kHz mono samples (numpy; ``load()``:
    a torch tensor) or raises AudioError."""

    id: str
    reference: str | None
    source: str
    loader: Callable[[], "np.ndarray | torch.Tensor"] | None = None
    error: str | None = None
    path: Path | None = None  # an audio file (read block by block by ``asr-ee transcribe``)

    def load_samples(self) -> np.ndarray:
        """The samples as a float32 numpy array (no torch needed)."""
        if self.error is not None:
            raise AudioError(self.error)
        assert self.loader is not None
        samples = self.loader()
        return samples.numpy() if hasattr(samples, "numpy") else np.asarray(samples, np.float32)

    def load(self) -> "torch.Tensor":
        """The samples as a torch tensor (evaluation, training tools)."""
        import torch

        return torch.from_numpy(self.load_samples())


def from_cuts(path: str | Path) -> list[Utterance]:
    from lhotse import CutSet

    path = Path(path)
    if not path.is_file():
        raise InputError(f"cut manifest {path} does not exist")
    try:
        cuts = CutSet.from_file(path)
    except Exception as e:
        raise InputError(f"cut manifest {path} cannot be read: {e}") from e
    utts = []
    for cut in cuts:
        text = " ".join(s.text or "" for s in cut.supervisions) if cut.supervisions else None

        def loader(cut=cut) -> np.ndarray:
            try:
                return to_model_rate(cut.load_audio()[0], cut.sampling_rate)
            except AudioError:
                raise
            except Exception as e:
                raise AudioError(f"{cut.id}: cannot load audio ({e})") from e

        utts.append(Utterance(cut.id, text, str(path), loader))
    return utts


def _find_audio(audio_dir: Path, utt_id: str) -> Path | None:
    for ext in AUDIO_EXTENSIONS:
        candidate = audio_dir / f"{utt_id}{ext}"
        if candidate.is_file():
            return candidate
    return None


def _file_utterance(utt_id: str, path: Path, reference: str | None) -> Utterance:
    if not path.is_file():
        return Utterance(utt_id, reference, str(path), error=f"{path}: no such file")
    return Utterance(utt_id, reference, str(path), lambda p=path: read_audio(p), path=path)


def from_transcripts(audio_dir: str | Path, transcripts: str | Path) -> list[Utterance]:
    """One utterance per line of ``transcripts`` (Kaldi ``text`` or TSV, see the module doc).

    A line that is not UTF-8, is empty or has no transcript text becomes a failed utterance whose
    error names the line; so does each audio file in ``audio_dir`` that no line names."""
    audio_dir, transcripts = Path(audio_dir), Path(transcripts)
    if not audio_dir.is_dir():
        raise InputError(f"audio directory {audio_dir} does not exist")
    if not transcripts.is_file():
        raise InputError(f"transcript file {transcripts} does not exist")
    try:
        lines = transcripts.read_bytes().splitlines()
    except OSError as e:
        raise InputError(f"transcript file {transcripts} cannot be read: {e}") from e
    utts, named = [], set()
    for number, raw in enumerate(lines, 1):
        where = f"{transcripts}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            key = raw.decode("utf-8", errors="replace").split("\t")[0].split(" ")[0].strip() or f"line {number}"
            utts.append(Utterance(key, None, where, error=f"{where}: not UTF-8 text (byte 0x{raw[e.start]:02x} "
                                                              f"at column {e.start + 1})"))
            named.add(Path(key).stem)
            continue
        if not line.strip():
            utts.append(Utterance(f"line {number}", None, where, error=f"{where}: empty line"))
            continue
        utt = _transcript_line(audio_dir, line, where)
        named.add(Path(utt.source).resolve() if utt.error is None else utt.id)
        utts.append(utt)
    if not utts:
        raise InputError(f"transcript file {transcripts} holds no utterances")
    for path in sorted(p for p in audio_dir.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()):
        if path.resolve() not in named and path.stem not in named:
            utts.append(Utterance(path.stem, None, str(path),
                                  error=f"{path}: audio with no transcript line in {transcripts}"))
    return utts


def _transcript_line(audio_dir: Path, line: str, where: str) -> Utterance:
    """A Kaldi (``utt_id words...``) or TSV (``path<TAB>...<TAB>transcript``) line."""
    if "\t" in line:
        cols = line.split("\t")
        rel, text = cols[0].strip(), cols[-1].strip()
        utt_id = Path(rel).stem
        if not text or len(cols) < 2:
            return Utterance(utt_id, None, where, error=f"{where}: {rel!r} has no transcript text")
        return _file_utterance(utt_id, audio_dir / rel, text)
    utt_id, _, text = line.strip().partition(" ")
    if not text.strip():
        return Utterance(utt_id, None, where, error=f"{where}: {utt_id!r} has no transcript text")
    found = _find_audio(audio_dir, utt_id)
    if found is None:
        return Utterance(utt_id, text.strip(), where, error=f"{where}: no audio file for {utt_id!r} in {audio_dir}")
    return _file_utterance(utt_id, found, text.strip())


STDIN = "-"


def from_files(paths: list[str | Path]) -> list[Utterance]:
    """Audio files, folders (the audio files in them, by name) and ``-`` (audio on stdin, read once).

    Ids are the files' stems; where two inputs share a stem (``clip.mp3``, ``clip.ogg``) their
    names, and where those clash too their paths as given, so every id is distinct."""
    files: list[Path | None] = []  # None: stdin
    for given in paths:
        path = Path(given)
        if str(given) == STDIN:
            if None in files:
                raise InputError("- (stdin) can be given once")
            files.append(None)
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
            if not found:
                raise InputError(f"{path} is a folder with no audio files ({', '.join(AUDIO_EXTENSIONS)})")
            files.extend(found)
        else:
            files.append(path)
    ids = _distinct_ids(files)
    return [_stdin_utterance() if path is None else _file_utterance(utt_id, path, None)
            for utt_id, path in zip(ids, files)]


def _distinct_ids(files: list[Path | None]) -> list[str]:
    def count(names: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        return counts

    stems = ["stdin" if p is None else p.stem for p in files]
    names = ["stdin" if p is None else p.name for p in files]
    stem_counts, name_counts = count(stems), count(names)
    return [stem if stem_counts[stem] == 1 else name if name_counts[name] == 1 else str(path)
            for stem, name, path in zip(stems, names, files)]


def _stdin_utterance() -> Utterance:
    def load() -> np.ndarray:
        import sys
        import tempfile

        data = sys.stdin.buffer.read()
        if not data:
            raise AudioError("stdin: no audio (0 bytes)")
        with tempfile.TemporaryDirectory(prefix="asr_ee-stdin-") as folder:
            path = Path(folder) / "stdin"
            path.write_bytes(data)
            try:
                return read_audio(path)
            except AudioError as e:
                raise AudioError(str(e).replace(str(path), "stdin", 1)) from e

    return Utterance("stdin", None, STDIN, load)
