"""``asr-ee export``: write a model's streaming step as ONNX graphs split at the exits, with one
metadata file (``model.json``: exits, graphs, chunk rules, the model's shipped defaults and weight
fingerprint), the tokenizer, the language model its defaults name and the model's learned exit gate
(``model.gate.json`` beside the model, or a legacy ``model.gate.pt``; written as JSON), for
``--backend onnx`` (onnxruntime).

    asr-ee export --model exp/small/model.pt --output exp/small/onnx
    asr-ee export --output exp/small/onnx-int8 --int8     # the shipped model, int8 weights
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export the streaming step to ONNX (graphs split at the exits)")
    p.add_argument("--model", help="exported model or checkpoint (default: the shipped model)")
    p.add_argument("--output", required=True, help="folder to write the graphs and model.json into")
    p.add_argument("--int8", action="store_true",
                   help="dynamic int8 weights for the matrix products (activations stay float)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr_ee.checkpoint import CheckpointError
    from asr_ee.config import ConfigError

    try:
        from asr_ee.export.onnx import export_onnx
    except ImportError as e:
        print(f"asr-ee export needs onnx and onnxruntime: pip install 'asr_ee[onnx]' ({e})", file=sys.stderr)
        return 2
    from asr_ee.pretrained import load_pretrained
    from asr_ee.streaming.factory import model_defaults

    from asr_ee.exits.gate import find_gate, load_gate

    try:
        pretrained = load_pretrained(args.model)
        defaults = model_defaults(pretrained)
        gate_file = find_gate(pretrained.path)
        gate = load_gate(gate_file, pretrained.encoder) if gate_file.is_file() else None
    except (CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    extra = []
    lm_name = defaults.get("lm")
    if lm_name is not None and (pretrained.path.parent / lm_name).is_file():
        from asr_ee.decoding.kenlm import lm_files

        extra += lm_files(pretrained.path.parent / lm_name)  # the .pt and its ARPA twin, where there is one
    result = export_onnx(pretrained.encoder, args.output, tokenizer=pretrained.tokenizer.path, int8=args.int8,
                         defaults=defaults, source=pretrained.path, extra_files=extra, gate=gate)
    size_mb = sum(p.stat().st_size for p in result.graphs) / 1e6
    print(f"wrote {len(result.graphs)} graphs ({size_mb:.1f} MB{', int8' if args.int8 else ''}), "
          f"exits at layers {result.metadata['exit_layers']}, "
          f"{'with the exit gate of ' + str(gate_file) if gate else 'no exit gate'}, to {result.output_dir}")
    return 0
