"""ONNX export of the streaming step, split at the exits.

One graph per exit block, so a chunk can stop at any exit and the runtime decides between graphs:

* ``block0.onnx``: the subsampling front end, block 0's layers (and its Splitformer branch) and
  exit head 0. Inputs ``feats`` (B, N, F): the fbank frames the subsampling consumes for this
  chunk (``4 C + 3``; the runtime keeps the unconsumed ones).
* ``block{b}.onnx`` (b >= 1): block b on the previous block's output ``prev_hidden`` (B, C, D), and
  exit head b.
* ``fill{b}.onnx`` (b >= 1): the ``copy`` policy's cache projection: block b's caches extended with
  entries projected from ``prev_hidden`` (the output of the exit where the chunk stopped).

Every graph also takes ``rope`` (C, Dh/2, 2), the rotary cos/sin tables of the chunk's positions
(and ``branch_rope`` (ceil(C/2), Dh/2, 2) in a block with a branch), computed by the runtime in
float64 as :func:`asr_ee.models.conformer.rotary_tables` does, so the graphs hold no positions and
no masks. State is named: ``layer{i}.key`` / ``.value`` (B, H, P, Dh), ``layer{i}.conv``
(B, D, K - 1), ``branch{j}.*`` likewise; outputs ``new.layer{i}.*``. Key/value outputs hold all
P + C frames: the runtime keeps the left context it is configured with, so one export serves any
chunk size and left context. Outputs ``log_probs`` (B, C, V) and ``hidden`` (B, C, D).

``model.json`` beside the graphs is the one metadata file (:data:`FORMAT`): encoder settings,
exits and their graphs, the tokenizer file (copied beside), the model's shipped streaming defaults
and the fingerprint of the torch model's weights (``model_fingerprint``), which the learned exit
gate copied beside (``model.gate.json``, :mod:`asr_ee.exits.gate`) is checked against.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from asr_ee.config import to_dict
from asr_ee.exits.fingerprint import FINGERPRINT_KEY, model_fingerprint
from asr_ee.exits.gate import ExitGate, check_gate, gate_path
from asr_ee.export.format import FORMAT, METADATA_FILE, STATE_FIELDS, state_names
from asr_ee.models.conformer import LayerState
from asr_ee.models.encoder import EarlyExitEncoder
from asr_ee.models.splitformer import downsample2x, upsample2x
from asr_ee.models.subsampling import RIGHT_CONTEXT, STRIDE

__all__ = ["FORMAT", "METADATA_FILE", "ExportResult", "export_onnx", "state_names"]

OPSET = 17


class _Block(nn.Module):
    """Block b of the streaming step as a traceable module (``fill``: the copy projection instead)."""

    def __init__(self, encoder: EarlyExitEncoder, b: int, fill: bool) -> None:
        super().__init__()
        self.front = encoder.subsampling if b == 0 and not fill else None
        self.layer_ids = list(encoder.block_layers[b])
        self.layers = nn.ModuleList([encoder.layers[i] for i in self.layer_ids])
        j = encoder.branch_of_block.get(b)
        self.branch = None if j is None else encoder.branches[j]
        self.head = None if fill else encoder.exits[b]
        self.fill = fill

    def forward(self, x: torch.Tensor, rope: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        branch_rope = rest[0] if self.branch is not None else None
        caches = list(rest[1:] if self.branch is not None else rest)
        states = [LayerState(*caches[3 * i:3 * i + 3]) for i in range(len(caches) // 3)]
        if self.front is not None:
            h = self.front.conv(x.unsqueeze(1))  # (B, ch, C, F')
            x = self.front.out(h.transpose(1, 2).flatten(2))  # (B, C, D)
        if self.fill:
            return self._fill(x, rope, branch_rope, states)
        block_in, new_states = x, []
        for layer, state in zip(self.layers, states):
            x, state = layer.infer(x, state, rope, None)
            new_states.append(state)
        if self.branch is not None:
            down, _ = downsample2x(block_in)
            y, state = self.branch.layer.infer(down, states[-1], branch_rope, None)
            x = x + upsample2x(y, block_in.size(1))
            new_states.append(state)
        log_probs = self.head(x).log_softmax(dim=-1)
        return (log_probs, x, *[t for s in new_states for t in (s.key, s.value, s.conv)])

    def _fill(self, hidden: torch.Tensor, rope: torch.Tensor, branch_rope: torch.Tensor | None,
              states: list[LayerState]) -> tuple[torch.Tensor, ...]:
        new_states = [layer.fill_state(hidden, state, rope, None) for layer, state in zip(self.layers, states)]
        if self.branch is not None:
            down, _ = downsample2x(hidden)
            new_states.append(self.branch.layer.fill_state(down, states[-1], branch_rope, None))
        return tuple(t for s in new_states for t in (s.key, s.value, s.conv))


@dataclass
class ExportResult:
    """Where the export went: the folder, its metadata and the graph files written."""

    output_dir: Path
    metadata: dict[str, Any]
    graphs: list[Path]


# Example sizes for tracing, all different from each other and from the model's constant sizes,
# so the tracer cannot tie two dynamic axes together (an axis equal to another in the example would
# come out of the export as the same symbol, and onnxruntime then rejects other sizes).
_EXAMPLE = {"batch": 3, "chunk": 10, "layer_cache": 13, "branch_cache": 11}


def _example_inputs(encoder: EarlyExitEncoder, b: int, fill: bool
                    ) -> tuple[list[torch.Tensor], list[str], dict[str, dict[int, str]]]:
    """Dummy inputs (sizes :data:`_EXAMPLE`), their names and dynamic axes."""
    cfg = encoder.cfg
    head_dim, batch, chunk = cfg.d_model // cfg.num_heads, _EXAMPLE["batch"], _EXAMPLE["chunk"]
    if b == 0 and not fill:
        inputs, names = [torch.randn(batch, 4 * chunk + 3, cfg.num_mel_bins)], ["feats"]
        axes = {"feats": {0: "batch", 1: "feat_frames"}}
    else:
        inputs, names = [torch.randn(batch, chunk, cfg.d_model)], ["prev_hidden"]
        axes = {"prev_hidden": {0: "batch", 1: "chunk"}}
    inputs.append(torch.randn(chunk, head_dim // 2, 2))
    names.append("rope")
    axes["rope"] = {0: "chunk"}
    j = encoder.branch_of_block.get(b)
    kinds = [("layer", i) for i in encoder.block_layers[b]]
    if j is not None:
        inputs.append(torch.randn((chunk + 1) // 2, head_dim // 2, 2))
        names.append("branch_rope")
        axes["branch_rope"] = {0: "half_chunk"}
        kinds.append(("branch", j))
    for kind, index in kinds:
        key, value, conv = state_names(kind, index)
        frames = _EXAMPLE[f"{kind}_cache"]
        inputs += [torch.randn(batch, cfg.num_heads, frames, head_dim), torch.randn(batch, cfg.num_heads, frames, head_dim),
                   torch.randn(batch, cfg.d_model, cfg.conv_kernel - 1)]
        names += [key, value, conv]
        axes[key] = axes[value] = {0: "batch", 2: f"{kind}_cache"}
        axes[conv] = {0: "batch"}
    return inputs, names, axes


def _export_graph(encoder: EarlyExitEncoder, b: int, fill: bool, path: Path) -> None:
    module = _Block(encoder, b, fill).eval()
    inputs, names, axes = _example_inputs(encoder, b, fill)
    state_inputs = [n for n in names if n.endswith(tuple(f".{f}" for f in STATE_FIELDS))]
    outputs = ([] if fill else ["log_probs", "hidden"]) + [f"new.{n}" for n in state_inputs]
    for name in outputs:
        if name in ("log_probs", "hidden"):
            axes[name] = {0: "batch", 1: "chunk"}
        elif name.endswith(".conv"):
            axes[name] = {0: "batch"}
        else:  # keys and values: the cache and the chunk (the runtime trims them to the left context)
            axes[name] = {0: "batch", 2: "new_" + ("branch" if name.startswith("new.branch") else "layer") + "_cache"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is the one that traces this
        torch.onnx.export(module, tuple(inputs), str(path), input_names=names, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def _quantize(path: Path) -> None:
    """Dynamic int8 weights for the graph's matrix products (activations stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(".fp32.onnx")
    path.rename(tmp)
    try:
        quantize_dynamic(str(tmp), str(path), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"])
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_onnx(encoder: EarlyExitEncoder, output_dir: str | Path, *, tokenizer: str | Path | None = None,
                int8: bool = False, defaults: dict[str, Any] | None = None,
                source: str | Path | None = None, extra_files: list[Path] | None = None,
                gate: ExitGate | None = None) -> ExportResult:
    """Write the streaming step of ``encoder`` as ONNX graphs and ``model.json`` into ``output_dir``.

    The encoder is copied first (``copy.deepcopy``) and only the copy is put in eval mode and
    traced: the caller's model keeps its mode, weights and BatchNorm statistics whatever happens.

    Args:
        encoder: a causal model (streaming needs a causal convolution).
        tokenizer: sentencepiece model file, copied beside the graphs as ``tokenizer.model``.
        int8: dynamic int8 weights for the matrix products (onnxruntime's quantizer).
        defaults: streaming settings (``StreamingConfig`` keys) the model ships with.
        source: the model file exported (recorded with its sha256).
        extra_files: files copied beside the graphs under their own names (the language model
            ``defaults["lm"]`` names).
        gate: the model's learned exit gate, written beside as ``model.gate.json`` (checked against
            ``encoder`` first: a gate of another model is a ConfigError).
    """
    if not encoder.cfg.causal:
        raise ValueError("only a causal model streams; this one has a centred convolution")
    if gate is not None:
        check_gate(gate, encoder)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / METADATA_FILE).unlink(missing_ok=True)  # written last: a failed export leaves none
    model = copy.deepcopy(encoder).cpu().float().eval()
    graphs, blocks = [], []
    for b in range(model.num_exits):
        entry: dict[str, Any] = {"graph": f"block{b}.onnx", "fill": None, "exit_layer": model.cfg.exit_layers[b],
                                 "layers": list(model.block_layers[b]), "branch": model.branch_of_block.get(b)}
        kinds = [False] + ([True] if b > 0 else [])
        for fill in kinds:
            path = output_dir / (f"fill{b}.onnx" if fill else f"block{b}.onnx")
            _export_graph(model, b, fill, path)
            if int8:
                _quantize(path)
            graphs.append(path)
        if b > 0:
            entry["fill"] = f"fill{b}.onnx"
        blocks.append(entry)
    metadata: dict[str, Any] = {
        "format": FORMAT, "encoder_config": to_dict(model.cfg), "exit_layers": list(model.cfg.exit_layers),
        "blocks": blocks, "int8": int8, "opset": OPSET, "streaming_defaults": dict(defaults or {}),
        "tokenizer": None, FINGERPRINT_KEY: model_fingerprint(encoder), "gate": None,
        "source": None if source is None else {"path": str(source), "sha256": _sha256(Path(source))},
        # any chunk size and left context run on the same graphs; a Splitformer's chunks are even
        "chunk_frames_multiple": 2 if model.branches else 1,
        # block 0 takes (chunk - 1) * stride + right_context + 1 fbank frames for a chunk of encoder frames
        "subsampling": {"stride": STRIDE, "right_context": RIGHT_CONTEXT},
        "features": {"sample_rate": 16000, "num_mel_bins": model.cfg.num_mel_bins, "frame_shift_ms": 10,
                     "frame_length_ms": 25, "first_chunk_fbank_frames": "4 * chunk_frames + 3",
                     "chunk_fbank_frames": "4 * chunk_frames"},
    }
    for extra in extra_files or []:
        shutil.copyfile(extra, output_dir / Path(extra).name)
    gate_file = gate_path(output_dir / METADATA_FILE)
    gate_file.unlink(missing_ok=True)
    if gate is not None:
        gate.save(gate_file)
        metadata["gate"] = gate_file.name
    if tokenizer is not None:
        shutil.copyfile(tokenizer, output_dir / "tokenizer.model")
        metadata["tokenizer"] = "tokenizer.model"
    (output_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return ExportResult(output_dir, metadata, graphs)
