"""Torch against the exported ONNX graphs (fp32 and int8) in one run, side by side: streaming at full
depth, greedy, one thread, the same audio and the same recognizer (only the encoder backend differs).

    python benchmarks/onnx_streaming.py [--model exp/small/model.pt] [--cuts DATA/cuts_test.jsonl.gz]
        [--limit 100] [--timing-utterances 12] [--repeats 3] [--presets paper] [--batch 8] [--json-out F]

For each model (the given one, and each preset with random weights and the model's vocabulary):
``asr-ee export`` fp32 and ``--int8`` into a temporary folder, then

* RTF: chunk compute (encoder + CTC decoding, the recognizer's trace) over the audio duration on
  ``--timing-utterances`` utterances, the three backends interleaved ``--repeats`` times, medians;
  ``x torch``: that time over torch's; ``peak``: the encoder's analytic FLOPs per second of audio
  (``asr_ee.models.flops``) at that RTF, as a share of a one-thread fp32 matmul measured here;
* batched: ``--batch`` streams decoded together (one ``infer`` per chunk): wall time over the audio
  of all streams (features included), and relative to the same streams decoded one by one on the
  same backend (``batch/alone``);
* WER (trained model only) on ``--limit`` utterances, and word agreement with torch's transcripts
  (100 minus the WER of the backend's transcript against torch's). The ONNX backends stream with
  their own front end (kaldi-native-fbank, no torch); ``onnx fp32, lhotse fbank`` (accuracy only)
  is the fp32 graphs on the torch path's features, which separates the graphs' effect from the
  front end's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from streaming_common import add_common_args, load_inputs, print_table  # noqa: E402

from asr_ee.decoding.wer import WordErrors, word_errors  # noqa: E402
from asr_ee.export.onnx import export_onnx  # noqa: E402
from asr_ee.models import build_encoder, preset  # noqa: E402
from asr_ee.models.flops import exit_costs  # noqa: E402
from asr_ee.pretrained import Pretrained  # noqa: E402
from asr_ee.runtime.onnx_encoder import load_onnx_model  # noqa: E402
from asr_ee.streaming import Recognizer, StreamingConfig  # noqa: E402
from asr_ee.streaming.simulate import run_streams  # noqa: E402

BACKENDS = ("torch", "onnx fp32", "onnx int8")
LHOTSE_FP32 = "onnx fp32, lhotse fbank"


def matmul_peak_gflops(size: int = 512, seconds: float = 1.0) -> float:
    """One-thread fp32 matmul throughput of this machine (best of a few timed runs)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        for _ in range(8):
            a @ b
        best = max(best, 8 * 2 * size ** 3 / (time.perf_counter() - start) / 1e9)
    return best


def _recognizers(pretrained: Pretrained, work_dir: Path, config: StreamingConfig) -> dict[str, Recognizer]:
    out = {"torch": Recognizer(pretrained, config)}
    for name, int8 in (("onnx fp32", False), ("onnx int8", True)):
        folder = work_dir / name.replace(" ", "-")
        start = time.perf_counter()
        export_onnx(pretrained.encoder, folder, tokenizer=pretrained.tokenizer.path, int8=int8)
        print(f"  exported {name} in {time.perf_counter() - start:.0f} s "
              f"({sum(p.stat().st_size for p in folder.glob('*.onnx')) / 1e6:.1f} MB)", flush=True)
        out[name] = Recognizer(load_onnx_model(folder, threads=1), config)
    return out


def _lhotse_fp32(work_dir: Path, config: StreamingConfig) -> Recognizer:
    return Recognizer(load_onnx_model(work_dir / "onnx-fp32", threads=1, frontend="lhotse"), config)


def _compute_s(results) -> float:
    return sum(c.compute_ms for r in results for c in r.chunks) / 1000.0


def _wall_s(recognizer: Recognizer, signals: list[torch.Tensor], batch: bool) -> float:
    """Wall time of decoding ``signals`` side by side (a batched chunk's trace entry holds the whole
    batch's time, so the trace cannot be summed over streams)."""
    start = time.perf_counter()
    run_streams(recognizer, signals, reset_at_endpoints=False, batch=batch)
    return time.perf_counter() - start


def _timing(recognizers: dict[str, Recognizer], signals: list[torch.Tensor], repeats: int,
            batch: int) -> dict[str, dict[str, float]]:
    audio_s = sum(s.numel() for s in signals) / 16000
    times: dict[str, list[float]] = {name: [] for name in recognizers}
    for _ in range(repeats):  # interleaved: a load change on the machine hits every backend alike
        for name, rec in recognizers.items():
            times[name].append(_compute_s([run_streams(rec, [s], reset_at_endpoints=False)[0] for s in signals]))
    stats = {name: {"rtf": statistics.median(t) / audio_s} for name, t in times.items()}
    if batch > 1:
        group = (signals * batch)[:batch]
        group_s = sum(s.numel() for s in group) / 16000
        for name, rec in recognizers.items():
            together = [_wall_s(rec, group, batch=True) for _ in range(repeats)]
            alone = [_wall_s(rec, group, batch=False) for _ in range(repeats)]
            stats[name]["batched_rtf"] = statistics.median(together) / group_s
            stats[name]["batched_ratio"] = statistics.median(together) / statistics.median(alone)
    return stats


def _accuracy(recognizers: dict[str, Recognizer], audio) -> dict[str, dict[str, float]]:
    texts = {name: [run_streams(rec, [a.samples], reset_at_endpoints=False)[0].text for a in audio]
             for name, rec in recognizers.items()}
    out = {}
    for name in recognizers:
        wer = sum((word_errors(a.utterance.reference or "", t) for a, t in zip(audio, texts[name])), WordErrors())
        agree = sum((word_errors(w, t) for w, t in zip(texts["torch"], texts[name])), WordErrors())
        out[name] = {"wer": wer.wer, "agreement": 100.0 - agree.wer}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--timing-utterances", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", default="paper", help="comma-separated presets with random weights ('' for none)")
    parser.add_argument("--batch", type=int, default=8, help="streams decoded together (1: skip)")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if args.limit is None:
        args.limit = 100
    pretrained, audio = load_inputs(args)
    config = StreamingConfig.from_dict({**StreamingConfig().to_dict(), "chunk_frames": args.chunk_frames,
                                        "left_context_chunks": args.left_context_chunks, "criterion": None,
                                        "controller": None, "endpoint": None, "decoding": "greedy",
                                        "max_exit_layer": None})
    signals = [a.samples for a in audio[: args.timing_utterances]]
    peak = matmul_peak_gflops()
    print(f"one-thread fp32 matmul peak here: {peak:.1f} GFLOP/s; timing on "
          f"{sum(s.numel() for s in signals) / 16000:.0f} s of audio, {args.repeats} interleaved repeats", flush=True)
    models = [("model", pretrained)]
    for name in filter(None, args.presets.split(",")):
        torch.manual_seed(0)
        encoder = build_encoder(preset(name, vocab_size=pretrained.tokenizer.vocab_size)).eval()
        models.append((name, Pretrained(encoder, pretrained.tokenizer, Path(name), {})))
    report, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in models:
            print(f"{label}: {sum(p.numel() for p in model.encoder.parameters()) / 1e6:.1f}M parameters", flush=True)
            recognizers = _recognizers(model, Path(tmp) / label, config)
            stats = _timing(recognizers, signals, args.repeats, args.batch)
            if label == "model":
                for name, acc in _accuracy({**recognizers, LHOTSE_FP32: _lhotse_fp32(Path(tmp) / label, config)},
                                           audio).items():
                    stats.setdefault(name, {}).update(acc)
            gflops = exit_costs(model.encoder.cfg, context_frames=float(config.chunk_frames + config.left_context_frames))[-1].gflops_per_second
            for name in BACKENDS:
                s = stats[name]
                s["x_torch"] = s["rtf"] / stats["torch"]["rtf"]
                s["peak_share"] = gflops / s["rtf"] / peak
                rows.append([label, name, s["rtf"], s["x_torch"], f"{100 * s['peak_share']:.0f}%",
                             s.get("batched_rtf", float("nan")), s.get("batched_ratio", float("nan")),
                             f"{s['wer']:.2f}" if "wer" in s else "-", f"{s['agreement']:.2f}" if "agreement" in s else "-"])
            if LHOTSE_FP32 in stats:
                s = stats[LHOTSE_FP32]
                rows.append([label, LHOTSE_FP32, float("nan"), float("nan"), "-", float("nan"), float("nan"),
                             f"{s['wer']:.2f}", f"{s['agreement']:.2f}"])
            report[label] = stats
    print_table(["model", "backend", "RTF", "x torch", "peak", f"RTF batch {args.batch}", "batch/alone", "WER %",
                 "agree %"], rows)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"peak_gflops": peak, "results": report}, indent=2) + "\n")


if __name__ == "__main__":
    main()
