"""The one factory that builds the recognizer users run: ``asr-ee transcribe``, ``asr-ee mic`` and
``asr_ee.Recognizer.from_pretrained`` all call :func:`build_recognizer`, so all three behave alike.

Settings come in three layers, each overriding the one before:

1. :class:`~asr_ee.streaming.config.StreamingConfig`'s defaults;
2. the model's shipped defaults, stored in the model file (``info["defaults"]``, see
   :func:`model_defaults`): streaming keys (``max_exit_layer``, ``criterion``, ...) and ``lm``,
   the language model's file name next to the model;
3. what the caller sets: ``settings`` (StreamingConfig keys, e.g. from a YAML file), then
   ``criterion``/``threshold``, ``lm`` and ``threads``.

The backend (``torch`` or ``onnx``, :mod:`asr_ee.runtime.backend`) follows the model: a model
file runs in torch, a folder written by ``asr-ee export`` on onnxruntime, and the shipped model
(``model`` None) in its ONNX export when onnxruntime is installed. Nothing here imports torch
unless the torch backend is chosen.

Units: ``max_exit_layer`` and the ``fixed`` criterion's ``threshold`` given here are both layer
numbers (an exit's layer); inside StreamingConfig (and in a model file's defaults or a ``--config``
file) the ``fixed`` threshold stays the exit index the criterion reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from asr_ee.config import ConfigError
from asr_ee.exits.criteria import DEFAULT_THRESHOLDS
from asr_ee.pretrained import DEFAULT_MODEL, Pretrained
from asr_ee.runtime.backend import load_model_for_backend
from asr_ee.streaming.config import StreamingConfig
from asr_ee.streaming.recognizer import Recognizer

if TYPE_CHECKING:
    from asr_ee.decoding.lm import NgramLM

__all__ = ["build_recognizer", "streaming_config", "model_defaults", "model_file_defaults", "check_defaults",
           "resolve_fixed_threshold", "DEFAULTS_KEY"]

DEFAULTS_KEY = "defaults"  # in the model file's ``info``
_NOT_STREAMING = ("lm",)


def check_defaults(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` validated (StreamingConfig keys and ``lm``, a file name or None): a ConfigError
    names a bad key or value."""
    defaults = dict(defaults)
    lm = defaults.get("lm")
    if lm is not None and (not isinstance(lm, str) or Path(lm).name != lm):
        raise ConfigError(f"defaults: lm must be a file name next to the model (or null), got {lm!r}")
    streaming = {k: v for k, v in defaults.items() if k not in _NOT_STREAMING}
    StreamingConfig.from_dict({**StreamingConfig().to_dict(), **streaming}, where="model defaults")
    return defaults


def model_defaults(pretrained: Pretrained) -> dict[str, Any]:
    """The model's shipped defaults: ``info["defaults"]`` of its file (``scripts/stamp_defaults.py``
    writes them); none for a file without them (every setting at StreamingConfig's default, no LM)."""
    return _defaults_of(pretrained.info)


def _defaults_of(info: Mapping[str, Any]) -> dict[str, Any]:
    stored = info.get(DEFAULTS_KEY)
    return check_defaults(stored) if stored is not None else {}


def model_file_defaults(path: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """A model file's or exported folder's path (None: the shipped model file) and its defaults,
    read without building the model (the shipped model's from its ONNX export where there is one:
    the same defaults, read without torch)."""
    from asr_ee.runtime.backend import shipped_onnx_dir
    from asr_ee.runtime.onnx_encoder import is_onnx_model_dir

    folder = Path(path) if path is not None else shipped_onnx_dir()
    if is_onnx_model_dir(folder):
        import json

        from asr_ee.export.format import METADATA_FILE

        metadata = json.loads((folder / METADATA_FILE).read_text())
        return Path(path) if path is not None else DEFAULT_MODEL, \
            _defaults_of({DEFAULTS_KEY: metadata.get("streaming_defaults") or None})
    from asr_ee.checkpoint import load_checkpoint

    path = Path(path) if path is not None else DEFAULT_MODEL
    return path, _defaults_of(load_checkpoint(path).get("info", {}))


def resolve_fixed_threshold(threshold: float, exit_layers: list[int]) -> float:
    """A ``fixed`` criterion's threshold given as a layer number (as ``max_exit_layer``), as the
    exit index the criterion holds internally."""
    if threshold in exit_layers:
        return float(exit_layers.index(int(threshold)))
    raise ConfigError(f"--threshold {threshold:g} for 'fixed' is not an exit layer of this model "
                      f"(exits at layers {', '.join(map(str, exit_layers))})")


def _criterion(data: dict[str, Any], criterion: str | None, threshold: float | None,
               exit_layers: list[int]) -> Any:
    """The criterion entry after the ``criterion``/``threshold`` options ('none': no criterion)."""
    if criterion == "none":
        return None
    if criterion is not None:
        value = threshold if threshold is not None else DEFAULT_THRESHOLDS.get(criterion)
        if value is None:
            raise ConfigError(f"criterion {criterion} needs --threshold (threshold=): it has no default")
        if criterion == "fixed":
            value = resolve_fixed_threshold(value, exit_layers)
        return {"kind": criterion, "threshold": value}
    current = data.get("criterion")
    if threshold is None:
        return current
    if current is None:
        raise ConfigError("a threshold without a criterion; name the criterion too")
    current = dict(current) if isinstance(current, Mapping) else {"kind": current.kind, "threshold": current.threshold}
    current["threshold"] = resolve_fixed_threshold(threshold, exit_layers) if current["kind"] == "fixed" else threshold
    return current


def _language_model(lm: str | Path | bool | None, defaults: Mapping[str, Any], settings: Mapping[str, Any],
                    pretrained: Pretrained) -> "NgramLM | None":
    """``lm``: a path, False for none, None for the model's default LM (not with greedy decoding
    asked for in ``settings``; a default LM file that is missing means none)."""
    from asr_ee.decoding.kenlm import load_lm

    greedy = settings.get("decoding") == "greedy"
    if lm is False:
        return None
    if lm is None or lm is True:
        name = defaults.get("lm")
        if greedy or name is None:
            return None
        path = pretrained.path.parent / name
        if not path.is_file():
            return None
    else:
        if greedy:
            raise ConfigError("greedy decoding cannot use a language model: drop the LM or decode with beam")
        path = Path(lm)
    language_model = load_lm(path)
    language_model.check_tokenizer(pretrained.tokenizer)
    return language_model


def streaming_config(exit_layers: list[int], *, defaults: Mapping[str, Any] | None = None,
                     settings: Mapping[str, Any] | None = None, criterion: str | None = None,
                     threshold: float | None = None) -> StreamingConfig:
    """The StreamingConfig of layers 1 and 3 (see the module docstring) for a model with exits at
    ``exit_layers``: StreamingConfig's defaults, the model's ``defaults``, ``settings``, then
    ``criterion``/``threshold``. A bad key or value raises ConfigError."""
    data = StreamingConfig().to_dict()
    data.update({k: v for k, v in (defaults or {}).items() if k not in _NOT_STREAMING})
    data.update(settings or {})
    data["criterion"] = _criterion(data, criterion, threshold, exit_layers)
    return StreamingConfig.from_dict(data)


def build_recognizer(model: str | Path | Pretrained | None = None, *, settings: Mapping[str, Any] | None = None,
                     criterion: str | None = None, threshold: float | None = None,
                     lm: str | Path | bool | None = None, threads: int | None = None,
                     recognizer_class: type[Recognizer] = Recognizer,
                     clock: Callable[[], float] | None = None,
                     cpu_load: Callable[[], float] | None = None, backend: str | None = None) -> Recognizer:
    """The recognizer for ``model`` (a model file, an exported folder, a loaded model, or None for
    the shipped one).

    Args:
        settings: StreamingConfig keys the caller chose; they override the model's defaults.
        criterion: an exit criterion name, or 'none' for none (every chunk to the cap).
        threshold: its threshold (a layer number for ``fixed``); alone, it changes the current
            criterion's.
        lm: a language model file, False for none, None for the model's default.
        threads: intra-op threads of torch or of onnxruntime (None: torch's as they are, one for onnxruntime).
        recognizer_class: what to build (a subclass of :class:`Recognizer`).
        clock, cpu_load: passed to the recognizer (tests pass fakes).
        backend: ``torch``, ``onnx`` or None (as the model says; see the module docstring).
    """
    pretrained = model if isinstance(model, Pretrained) else \
        load_model_for_backend(model, backend, threads=threads or 1)
    if threads is not None and not getattr(pretrained.encoder, "streams_numpy", False):
        import torch  # the torch backend: its intra-op threads

        torch.set_num_threads(max(1, threads))
    defaults = model_defaults(pretrained)
    settings = dict(settings or {})
    config = streaming_config(list(pretrained.encoder.cfg.exit_layers), defaults=defaults, settings=settings,
                              criterion=criterion, threshold=threshold)
    language_model = _language_model(lm, defaults, settings, pretrained)
    if language_model is not None:
        config = dataclasses.replace(config, decoding="beam")
    kwargs: dict[str, Any] = {"lm": language_model, "cpu_load": cpu_load}
    if clock is not None:
        kwargs["clock"] = clock
    return recognizer_class(pretrained, config, **kwargs)
