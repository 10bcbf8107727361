"""Peak memory (RSS) of transcribing one long file: the whole file in memory (``load_audio`` then
``Recognizer.transcribe``, what ``asr-ee transcribe`` did) against the file read in blocks
(:class:`asr_ee.audio.AudioFile` fed by :func:`asr_ee.streaming.blocks.run_blocks`).

    nice -n 19 .venv/bin/python benchmarks/transcribe_memory.py [--minutes 30] [--model M] [--threads 1]

Writes a synthetic file of ``--minutes`` (tones and noise bursts, 16 kHz 16-bit WAV) to a temporary
folder and runs each way in a fresh process, which reports its peak RSS (``ru_maxrss``) and time.
``--baseline-only``/``--blocks-only`` run one way. A growing gap with ``--minutes`` is what the block
reading removes.

Measured (shipped model, 1 thread, on the project's shared 2-core CPU machine, 2 Dec 2026):

    minutes | whole file: peak RSS | blocks: peak RSS | (model loaded)
          5 |               673 MB |           654 MB |         608 MB
         30 |               912 MB |           656 MB |         608 MB
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _write_synthetic(path: Path, minutes: float, sample_rate: int = 16000) -> None:
    """Minute by minute, so that writing it does not need the whole signal in memory."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as f:
        for minute in range(math.ceil(minutes)):
            n = int(min(60.0, 60.0 * (minutes - minute)) * sample_rate)
            t = (minute * 60 * sample_rate + np.arange(n)) / sample_rate
            phase = 2 * np.pi * np.cumsum(120 + 80 * np.sin(2 * np.pi * 0.7 * t)) / sample_rate
            voiced = sum(np.sin(k * phase) / k for k in range(1, 6)) * (np.sin(2 * np.pi * 1.3 * t) > -0.3)
            f.write((0.3 * voiced + 0.05 * rng.standard_normal(n)).astype(np.float32))


def _child(way: str, path: str, model: str | None, threads: int) -> None:
    import torch

    from asr_ee.api import Recognizer

    torch.set_num_threads(threads)
    recognizer = Recognizer.from_pretrained(model)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if way == "whole":
        text = recognizer.transcribe(path).text
    else:
        from asr_ee.audio import AudioFile
        from asr_ee.streaming.blocks import run_blocks

        audio = AudioFile(path)
        text = run_blocks(recognizer, audio.blocks(), sample_rate=audio.sample_rate).text
    print(json.dumps({"way": way, "model_loaded_rss_mb": before / 1024,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "seconds": time.perf_counter() - start, "words": len(text.split())}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--model", help="default: the shipped model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--baseline-only", action="store_true")
    p.add_argument("--blocks-only", action="store_true")
    p.add_argument("--child", nargs=2, metavar=("WAY", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], args.model, args.threads)
        return 0
    ways = ["whole"] * (not args.blocks_only) + ["blocks"] * (not args.baseline_only)
    with tempfile.TemporaryDirectory(prefix="asr_ee-memory-") as folder:
        path = Path(folder) / "long.wav"
        _write_synthetic(path, args.minutes)
        print(f"{args.minutes:g} min synthetic file, {path.stat().st_size / 2**20:.0f} MB; "
              f"model {args.model or 'shipped'}, {args.threads} thread(s)")
        for way in ways:
            cmd = [sys.executable, __file__, "--child", way, str(path), "--threads", str(args.threads)]
            cmd += ["--model", args.model] if args.model else []
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"  {way:6s}: peak RSS {out['peak_rss_mb']:7.0f} MB "
                  f"(model loaded: {out['model_loaded_rss_mb']:.0f} MB), {out['seconds']:.0f} s, {out['words']} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
