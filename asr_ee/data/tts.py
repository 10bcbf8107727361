"""Text-to-speech engines (espeak-ng, flite, festival) behind one interface.

A :class:`Voice` is an engine, a base voice of that engine and a few numeric parameters (speed,
pitch, ...); its :attr:`Voice.id` is stable and serves as the lhotse speaker id. A
:class:`SynthesisJob` renders one text with one voice into a 16 kHz mono FLAC file.
:func:`synthesize` runs jobs in worker processes; festival jobs of one voice are batched into a
single festival call, because festival's start-up dominates its cost.

Voice parameters:
    espeak: ``speed`` (words per minute, ``-s``), ``pitch`` (0-99, ``-p``), ``gap`` (pause between
    words in 10 ms units, ``-g``).
    flite: ``stretch`` (``duration_stretch``, >1 is slower), ``f0`` (``int_f0_target_mean``, Hz).
    festival: ``stretch`` (>1 is slower), ``f0`` (mean F0 in Hz, diphone voices) or ``semitones``
    (pitch shift, HTS voice).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from asr_ee.data.errors import MissingPackageError, SynthesisError
from asr_ee.data.workers import process_pool

__all__ = ["SAMPLE_RATE", "ENGINES", "ESPEAK_ACCENTS", "ESPEAK_VARIANTS", "FLITE_VOICES",
           "FESTIVAL_VOICES", "Voice", "SynthesisJob", "SynthesisResult", "check_engine",
           "synthesize", "synthesize_batch"]

SAMPLE_RATE = 16000
ENGINES = ("espeak", "flite", "festival")
_BINARY = {"espeak": ("espeak-ng", "espeak-ng"), "flite": ("flite", "flite"),
           "festival": ("festival", "festival")}
ESPEAK_ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# espeak-ng's voice variants (files in espeak-ng-data/voices/!v), minus whispers and "Mr serious"
ESPEAK_VARIANTS = tuple(
    [f"m{i}" for i in range(1, 9)] + [f"f{i}" for i in range(1, 6)]
    + ["klatt"] + [f"klatt{i}" for i in range(2, 7)]
    + "Alex Alicia Andrea Andy Annie AnxiousAndy Demonic Denis Diogo Gene Gene2 Henrique Hugo "
      "Jacky Lee Marco Mario Michael Mike Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm "
      "Tweaky UniRobot adam anika anikaRobot announcer antonio aunty belinda benjamin boris "
      "caleb croak david ed edward edward2 fast grandma grandpa gustave iven iven2 iven3 iven4 "
      "john kaukovalta linda marcelo max michel miguel norbert pablo paul pedro quincy rob "
      "robert robosoft robosoft2 robosoft3 robosoft4 robosoft5 robosoft6 robosoft7 robosoft8 "
      "sandro shelby steph steph2 steph3 travis victor zac".split())
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
FESTIVAL_VOICES = {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                   "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}
_FESTIVAL_HTS = ("cmu_us_slt_arctic_hts",)
_MIN_SECONDS = 0.2


@dataclasses.dataclass(frozen=True)
class Voice:
    """One synthetic speaker: ``engine``, base ``voice`` and sorted ``(name, value)`` params."""

    engine: str
    voice: str
    params: tuple[tuple[str, float], ...] = ()

    @staticmethod
    def make(engine: str, voice: str, **params: float) -> "Voice":
        """Build a voice with its parameters rounded (so ids stay short and stable)."""
        if engine not in ENGINES:
            raise ValueError(f"unknown TTS engine {engine!r}; choose from {list(ENGINES)}")
        return Voice(engine, voice, tuple(sorted((k, round(float(v), 2)) for k, v in params.items())))

    @property
    def id(self) -> str:
        """Stable speaker id, e.g. ``espeak-en-gb-x-rp+f3_gap1_pitch47_speed162``."""
        tail = "".join(f"_{k}{v:g}" for k, v in self.params)
        return f"{self.engine}-{self.voice}{tail}"

    def param(self, name: str, default: float) -> float:
        return dict(self.params).get(name, default)


@dataclasses.dataclass(frozen=True)
class SynthesisJob:
    """Render ``text`` with ``voice`` into ``path`` (a ``.flac`` file, 16 kHz mono)."""

    utterance_id: str
    text: str
    voice: Voice
    path: str


@dataclasses.dataclass(frozen=True)
class SynthesisResult:
    utterance_id: str
    path: str
    num_samples: int
    error: str | None = None


def check_engine(engine: str, voice: str | None = None) -> None:
    """Raise :class:`MissingPackageError` naming the apt package if ``engine`` (or a festival
    ``voice``) is not installed."""
    if engine not in _BINARY:
        raise ValueError(f"unknown TTS engine {engine!r}; choose from {list(ENGINES)}")
    binary, package = _BINARY[engine]
    if shutil.which(binary) is None:
        raise MissingPackageError(f"the {engine} TTS engine (program '{binary}')", package)
    if engine == "festival" and voice is not None:
        if voice not in FESTIVAL_VOICES:
            raise ValueError(f"unknown festival voice {voice!r}; choose from {list(FESTIVAL_VOICES)}")
        found = list(Path("/usr/share/festival/voices").glob(f"*/{voice}"))
        if not found:
            raise MissingPackageError(f"the festival voice {voice}", FESTIVAL_VOICES[voice])


def _espeak_command(voice: Voice, text: str, out: Path) -> list[str]:
    return ["espeak-ng", "-v", voice.voice, "-s", str(int(voice.param("speed", 175))),
            "-p", str(int(voice.param("pitch", 50))), "-g", str(int(voice.param("gap", 0))),
            "-w", str(out), "--", text]


def _flite_command(voice: Voice, text: str, out: Path) -> list[str]:
    cmd = ["flite", "-voice", voice.voice, "--setf",
           f"duration_stretch={voice.param('stretch', 1.0)}"]
    if "f0" in dict(voice.params):
        cmd += ["--setf", f"int_f0_target_mean={voice.param('f0', 100.0)}"]
    return cmd + ["-t", text, "-o", str(out)]


def _festival_script(voice: Voice, items: Sequence[tuple[str, Path]]) -> str:
    lines = [f"(voice_{voice.voice})"]
    stretch = voice.param("stretch", 1.0)
    if voice.voice in _FESTIVAL_HTS:
        lines.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" '
                     f'{1.0 / stretch:.3f}) (list "-fm" {voice.param("semitones", 0.0)}))))')
    else:
        lines.append(f"(Parameter.set 'Duration_Stretch {stretch})")
        if "f0" in dict(voice.params):
            f0 = voice.param("f0", 105.0)
            lines.append(f"(set! int_lr_params '((target_f0_mean {f0}) (target_f0_std {f0 * 0.15:.1f})"
                         " (model_f0_mean 170) (model_f0_std 34)))")
    for text, out in items:
        quoted = text.replace("\\", " ").replace('"', " ")
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{quoted}")) "{out}" \'riff)')
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except FileNotFoundError as e:
        engine = next(k for k, (b, _) in _BINARY.items() if b == cmd[0])
        raise MissingPackageError(f"the {engine} TTS engine (program '{cmd[0]}')",
                                  _BINARY[engine][1]) from e
    if proc.returncode != 0:
        raise SynthesisError(f"{' '.join(cmd[:6])} ... exited with {proc.returncode}: "
                             f"{proc.stderr.decode(errors='replace')[-500:]}")


def _level(utterance_id: str) -> float:
    """A deterministic peak level in [0.3, 0.95] per utterance (loudness variety)."""
    return 0.3 + 0.65 * (zlib.crc32(utterance_id.encode()) % 1000) / 999


def _finish(raw: Path, job: SynthesisJob) -> SynthesisResult:
    """Read the engine's wav, make it 16 kHz mono at a set peak level, write ``job.path``."""
    import torch
    import torchaudio.functional as AF

    if not raw.is_file() or raw.stat().st_size <= 44:
        return SynthesisResult(job.utterance_id, job.path, 0, f"{job.voice.engine} wrote no audio")
    audio, rate = sf.read(str(raw), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = AF.resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if audio.size < _MIN_SECONDS * SAMPLE_RATE or peak < 1e-4:
        return SynthesisResult(job.utterance_id, job.path, 0, "empty or silent audio")
    audio = audio * (_level(job.utterance_id) / peak)
    final = Path(job.path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp_{final.name}")
    sf.write(str(tmp), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, final)
    return SynthesisResult(job.utterance_id, job.path, int(audio.shape[0]))


def _failed(job: SynthesisJob, error: Exception) -> SynthesisResult:
    return SynthesisResult(job.utterance_id, job.path, 0, f"{type(error).__name__}: {error}")


def synthesize_batch(jobs: Sequence[SynthesisJob]) -> list[SynthesisResult]:
    """Synthesize ``jobs`` in this process. Festival jobs must all share one voice.

    A failing utterance gives a result with ``error`` set; a missing engine raises
    :class:`MissingPackageError`.
    """
    if not jobs:
        return []
    with tempfile.TemporaryDirectory(prefix="asr_ee_tts_") as tmp:
        raws = [Path(tmp) / f"{i}.wav" for i in range(len(jobs))]
        if jobs[0].voice.engine == "festival":
            if len({job.voice for job in jobs}) != 1:
                raise ValueError("a festival batch must use a single voice")
            script = Path(tmp) / "batch.scm"
            script.write_text(_festival_script(jobs[0].voice, [(j.text, r) for j, r in zip(jobs, raws)]))
            try:
                _run(["festival", "-b", str(script)], timeout=60 + 10 * len(jobs))
            except SynthesisError as e:  # keep the utterances written before the failure
                return [_finish(r, j) if r.is_file() else _failed(j, e) for j, r in zip(jobs, raws)]
            return [_finish(r, j) for j, r in zip(jobs, raws)]
        results = []
        for job, raw in zip(jobs, raws):
            build = _espeak_command if job.voice.engine == "espeak" else _flite_command
            try:
                _run(build(job.voice, job.text, raw), timeout=60)
                results.append(_finish(raw, job))
            except SynthesisError as e:
                results.append(_failed(job, e))
        return results


def _batches(jobs: Sequence[SynthesisJob], batch_size: int,
             festival_batch_size: int) -> Iterator[list[SynthesisJob]]:
    """Group jobs: festival by voice (large batches), the others in order (small batches)."""
    festival: dict[Voice, list[SynthesisJob]] = {}
    others: list[SynthesisJob] = []
    for job in jobs:
        if job.voice.engine == "festival":
            festival.setdefault(job.voice, []).append(job)
        else:
            others.append(job)
    for group in festival.values():  # festival first: the slowest batches start early
        for i in range(0, len(group), festival_batch_size):
            yield group[i:i + festival_batch_size]
    for i in range(0, len(others), batch_size):
        yield others[i:i + batch_size]


def synthesize(jobs: Iterable[SynthesisJob], *, num_jobs: int = 2, batch_size: int = 16,
               festival_batch_size: int = 40, desc: str = "synthesizing") -> list[SynthesisResult]:
    """Synthesize every job over ``num_jobs`` processes; results come back in job order."""
    jobs = list(jobs)
    for engine, voice in sorted({(j.voice.engine, j.voice.voice) for j in jobs}):
        check_engine(engine, voice if engine == "festival" else None)
    order = {job.utterance_id: i for i, job in enumerate(jobs)}
    results: list[SynthesisResult | None] = [None] * len(jobs)
    batches = list(_batches(jobs, batch_size, festival_batch_size))
    with tqdm(total=len(jobs), desc=desc, unit="utt") as bar:
        if num_jobs <= 1:
            done: Iterable[list[SynthesisResult]] = (synthesize_batch(b) for b in batches)
            for batch_results in done:
                for r in batch_results:
                    results[order[r.utterance_id]] = r
                bar.update(len(batch_results))
        else:
            with process_pool(num_jobs) as pool:
                futures = [pool.submit(synthesize_batch, b) for b in batches]
                for future in concurrent.futures.as_completed(futures):
                    batch_results = future.result()
                    for r in batch_results:
                        results[order[r.utterance_id]] = r
                    bar.update(len(batch_results))
    return [r for r in results if r is not None]
