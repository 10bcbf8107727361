"""Decoding speed on real posteriors: frames/s of greedy, beam search and beam search + LM, the
hand-written Python search (``asr_ee.decoding.reference``, the old decoder) against flashlight-text
(``asr_ee.decoding.ctc``), in one run, with each decoder's WER and how often old and new agree.

    nice -n 19 .venv/bin/python benchmarks/decoding_speed.py \\
        confident=/work/data/offline_tts_small/cuts_test.jsonl.gz \\
        uncertain=/work/data/offline_tts_natural/cuts_natural.jsonl.gz \\
        [--model exp/small/model.pt] [--lm exp/small/lm.pt] [--exit-layer 12] [--limit 100] [--beam 8] \\
        [--posteriors-cache DIR]

Each ``NAME=MANIFEST`` is a set of utterances; the encoder runs once per utterance (full
attention), its posteriors at ``--exit-layer`` are kept (in ``--posteriors-cache`` if given, so a
rerun skips the encoder) and every decoder decodes the same ones. The old decoder's LM is the
Kneser-Ney model in ``--lm`` (``.pt``, read with torch); the new one reads the same LM as ARPA
through KenLM (the ``lm.arpa`` that ``asr-ee lm`` writes beside it, else converted once and cached).
Times are the decoding thread's CPU time (``time.process_time``, one thread: on a busy machine wall
time would measure the neighbours); the encoder's wall time is printed for scale.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr_ee.decoding.ctc import greedy_decode, prefix_beam_search  # noqa: E402
from asr_ee.decoding.kenlm import load_lm  # noqa: E402
from asr_ee.decoding.lm import DEFAULT_LENGTH_BONUS, DEFAULT_LM_WEIGHT, load_ngram  # noqa: E402
from asr_ee.decoding.reference import reference_greedy_decode, reference_prefix_beam_search  # noqa: E402
from asr_ee.decoding.wer import WordErrors, word_errors  # noqa: E402
from asr_ee.features import SAMPLE_RATE, make_fbank  # noqa: E402
from asr_ee.inputs import from_cuts  # noqa: E402
from asr_ee.pretrained import DEFAULT_LM, load_pretrained  # noqa: E402

Decoder = Callable[[np.ndarray], list[int]]


def posteriors(manifest: str, args: argparse.Namespace, pretrained) -> tuple[list[tuple[str, np.ndarray]], float]:
    """(reference, (T, V) log-posteriors at the chosen exit) per utterance, and the encoder's seconds
    (0 when they came from the cache)."""
    encoder, fbank = pretrained.encoder.eval(), make_fbank()
    layers = list(encoder.cfg.exit_layers)
    index = layers.index(args.exit_layer) if args.exit_layer else len(layers) - 1
    cache = None
    if args.posteriors_cache:
        key = hashlib.sha256(f"{Path(pretrained.path).resolve()}|{Path(pretrained.path).stat().st_mtime_ns}|"
                             f"{manifest}|{index}|{args.limit}".encode()).hexdigest()[:16]
        cache = Path(args.posteriors_cache) / f"posteriors-{key}.npz"
        if cache.is_file():
            with np.load(cache, allow_pickle=False) as saved:
                refs = [str(r) for r in saved["references"]]
                return [(r, saved[f"u{i}"]) for i, r in enumerate(refs)], 0.0
    out, start = [], time.perf_counter()
    for utt in from_cuts(Path(manifest))[: args.limit]:
        x = torch.from_numpy(fbank.extract(utt.load().numpy(), SAMPLE_RATE)).float()[None]
        with torch.no_grad():
            exits, _ = encoder(x, torch.tensor([x.size(1)]))
        out.append((utt.reference, exits[index][0].numpy().astype(np.float32)))
    spent = time.perf_counter() - start
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, references=np.array([r for r, _ in out]), **{f"u{i}": lp for i, (_, lp) in enumerate(out)})
    return out, spent


def decoders(args: argparse.Namespace, blank: int) -> dict[str, Decoder]:
    old_lm = load_ngram(args.lm)
    new_lm = load_lm(args.lm)
    new_lm.kenlm()  # loaded before timing
    fusion = {"lm_weight": DEFAULT_LM_WEIGHT, "length_bonus": DEFAULT_LENGTH_BONUS}
    return {
        "greedy old": lambda lp: reference_greedy_decode(torch.from_numpy(lp), blank=blank),
        "greedy new": lambda lp: greedy_decode(lp, blank=blank),
        "beam old": lambda lp: reference_prefix_beam_search(torch.from_numpy(lp), beam=args.beam, blank=blank),
        "beam new": lambda lp: prefix_beam_search(lp, beam=args.beam, blank=blank),
        "beam+LM old": lambda lp: reference_prefix_beam_search(torch.from_numpy(lp), beam=args.beam, blank=blank,
                                                               lm=old_lm, **fusion),
        "beam+LM new": lambda lp: prefix_beam_search(lp, beam=args.beam, blank=blank, lm=new_lm, **fusion),
    }


def run(name: str, data: list[tuple[str, np.ndarray]], encoder_s: float, decs: dict[str, Decoder],
        tokenizer) -> None:
    frames = sum(lp.shape[0] for _, lp in data)
    encoder = f", encoder {encoder_s:.1f} s" if encoder_s else ", posteriors from the cache"
    print(f"\n{name}: {len(data)} utterances, {frames} frames{encoder}")
    print(f"  {'decoder':<12} {'frames/s':>10} {'CPU s':>8} {'WER %':>7}  {'same tokens as old':>18}  speed-up")
    hyps: dict[str, list[list[int]]] = {}
    seconds: dict[str, float] = {}
    for dec_name, decode in decs.items():
        errors, start = WordErrors(), time.process_time()
        hyps[dec_name] = [decode(lp) for _, lp in data]
        seconds[dec_name] = spent = time.process_time() - start
        for (reference, _), tokens in zip(data, hyps[dec_name]):
            errors += word_errors(reference, tokenizer.decode(tokens))
        old_name = dec_name.replace(" new", " old")
        same = speedup = ""
        if dec_name.endswith("new") and old_name in hyps:
            same = f"{sum(a == b for a, b in zip(hyps[old_name], hyps[dec_name]))}/{len(data)}"
            speedup = f"{seconds[old_name] / spent:.1f}x"
        print(f"  {dec_name:<12} {frames / spent:>10.0f} {spent:>8.2f} {errors.wer:>7.2f}  {same:>18}  {speedup}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sets", nargs="+", help="NAME=MANIFEST (lhotse cuts)")
    p.add_argument("--model", help="default: the shipped model")
    p.add_argument("--lm", default=str(DEFAULT_LM), help="a .pt token LM (default: the shipped one)")
    p.add_argument("--exit-layer", type=int, help="exit whose posteriors are decoded (default: the last)")
    p.add_argument("--limit", type=int, default=100, help="utterances per set")
    p.add_argument("--beam", type=int, default=8)
    p.add_argument("--posteriors-cache", type=Path, help="folder to keep the posteriors in between runs")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    pretrained = load_pretrained(args.model)
    decs = decoders(args, pretrained.tokenizer.blank_id)
    print(f"model {pretrained.path}, LM {args.lm}, beam {args.beam}, exit layer "
          f"{args.exit_layer or pretrained.encoder.cfg.exit_layers[-1]}, LM weight {DEFAULT_LM_WEIGHT}, "
          f"bonus {DEFAULT_LENGTH_BONUS}; one thread")
    for spec in args.sets:
        name, _, manifest = spec.partition("=")
        data, encoder_s = posteriors(manifest, args, pretrained)
        run(name, data, encoder_s, decs, pretrained.tokenizer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
