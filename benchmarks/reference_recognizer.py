"""How hard is a test split for a recognizer trained on recorded human speech?

Runs pocketsphinx (CMU Sphinx 5, its bundled US English acoustic model and language model, both
trained on recorded speech; no asr_ee code is involved) over the first ``--limit`` cuts of each
split and prints its WER, scored by asr_ee's normalizer and aligner. A voice that pocketsphinx
recognizes as well as it recognizes people is natural-sounding in the sense that matters here;
a voice it fails on (espeak-ng's formant voices) is not. The figures say which test voices are
"like people" and how far asr_ee's models are from a conventional recognizer on them.

    pip install pocketsphinx   # not an asr_ee dependency
    python benchmarks/reference_recognizer.py DATA/cuts_test_heldout_voices.jsonl.gz \
        NATURAL/cuts_natural.jsonl.gz KOKORO/cuts_kokoro_heldout.jsonl.gz --limit 80
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr_ee.decoding.wer import WordErrors, word_errors  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cuts", nargs="+", type=Path, help="lhotse cut manifests (16 kHz recordings)")
    parser.add_argument("--limit", type=int, default=80, help="cuts per split (the first ones)")
    args = parser.parse_args()
    try:
        from pocketsphinx import Decoder
    except ImportError:
        print("this benchmark needs pocketsphinx: pip install pocketsphinx", file=sys.stderr)
        return 2
    from lhotse import CutSet

    decoder = Decoder(samprate=16000)
    for path in args.cuts:
        total, n = WordErrors(), 0
        for cut in CutSet.from_file(path).subset(first=args.limit):
            audio = cut.load_audio()[0]
            if cut.sampling_rate != 16000:
                raise SystemExit(f"{path}: {cut.id} is {cut.sampling_rate} Hz; pocketsphinx's model wants 16 kHz")
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            decoder.start_utt()
            decoder.process_raw(pcm.tobytes(), full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp().hypstr if decoder.hyp() is not None else ""
            total += word_errors(cut.supervisions[0].text, hyp)
            n += 1
        print(f"{path.name}: pocketsphinx WER {total.wer:.1f}% ({n} utterances, {total.num_words} words; "
              f"ins {total.ins} del {total.dels} sub {total.subs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
