"""Is the last word kept when the audio ends right after speech? (issue 18)

Each sentence is spoken by flite, then its trailing silence is trimmed with sox (``reverse silence
1 0.01 0.5% reverse``); both versions are transcribed with the shipped model and its defaults
(``Recognizer.from_pretrained``), once per ``--tails`` value of ``tail_silence_ms`` (the silence
the stream appends at the end of input). Prints, per tail, in how many sentences the last word of
the transcript is the sentence's last word, trimmed and untrimmed.

    python benchmarks/last_word.py [--model exp/small/model.pt] [--tails 0,160,320] [--sentences FILE]

Needs ``flite`` and ``sox`` (scripts/setup.sh installs both).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr_ee.api import Recognizer  # noqa: E402
from asr_ee.text import normalize_text  # noqa: E402

SENTENCES = [
    "turn on the kitchen lights", "open the front door", "please call my sister tonight",
    "the meeting starts at four", "we should walk to the park", "put the milk in the fridge",
    "set an alarm for seven", "what time is it in paris", "play some quiet music",
    "the train leaves at noon", "close the window in the bedroom", "send the report to my boss",
    "it is going to rain tomorrow", "add eggs to the shopping list", "the children are asleep",
    "read me the latest news", "my phone battery is low", "the garden needs water",
    "lock the car before you leave", "dinner will be ready soon",
]


def speak(text: str, folder: Path, index: int) -> tuple[Path, Path]:
    full, trimmed = folder / f"s{index}.wav", folder / f"s{index}_trim.wav"
    subprocess.run(["flite", "-t", text, "-o", str(full)], check=True)
    subprocess.run(["sox", str(full), str(trimmed), "reverse", "silence", "1", "0.01", "0.5%", "reverse"], check=True)
    return full, trimmed


def last_word(text: str) -> str:
    words = text.split()
    return words[-1] if words else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--tails", default="0,160,320", help="tail_silence_ms values to compare")
    parser.add_argument("--sentences", help="a text file, one sentence a line (default: 20 built-in)")
    args = parser.parse_args()
    sentences = Path(args.sentences).read_text().splitlines() if args.sentences else SENTENCES
    sentences = [normalize_text(s) for s in sentences if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        audio = [speak(s, Path(tmp), i) for i, s in enumerate(sentences)]
        print(f"{len(sentences)} flite sentences; last word right (trimmed / untrimmed):")
        for tail in (float(t) for t in args.tails.split(",")):
            recognizer = Recognizer.from_pretrained(args.model, settings={"tail_silence_ms": tail, "controller": None})
            right = [0, 0]
            for sentence, files in zip(sentences, audio):
                for k, path in enumerate((files[1], files[0])):
                    right[k] += last_word(recognizer.transcribe(path).text) == last_word(sentence)
            n = len(sentences)
            print(f"  tail_silence_ms {tail:g}: {right[0]}/{n} trimmed, {right[1]}/{n} untrimmed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
