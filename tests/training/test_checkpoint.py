"""Bad model files give CheckpointError, not tracebacks; interrupted saves are cleaned up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr_ee.checkpoint import CheckpointError, atomic_save, load_checkpoint, load_model, remove_partial_saves
from asr_ee.config import to_dict
from asr_ee.models import build_encoder, preset


def _save_model(path: Path, cfg_name: str = "tiny", **changes: object) -> None:
    model = build_encoder(preset(cfg_name))
    config = {**to_dict(model.cfg), **changes}
    atomic_save({"encoder_config": config, "model": model.state_dict()}, path)


def test_a_model_file_loads(tmp_path: Path) -> None:
    _save_model(tmp_path / "ok.pt")
    model, tokenizer, info = load_model(tmp_path / "ok.pt")
    assert model.cfg.num_layers == 4 and tokenizer is None and info == {}


def test_a_saved_tensor_is_not_a_checkpoint(tmp_path: Path) -> None:
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(CheckpointError, match="not an asr_ee checkpoint.*Tensor"):
        load_model(tmp_path / "tensor.pt")
    with pytest.raises(CheckpointError, match="Tensor"):
        load_checkpoint(tmp_path / "tensor.pt")


def test_settings_that_do_not_match_the_weights(tmp_path: Path) -> None:
    _save_model(tmp_path / "wide.pt", d_model=64, num_heads=2)  # the weights are d_model 32
    with pytest.raises(CheckpointError, match="weights do not match its encoder settings.*d_model 64"):
        load_model(tmp_path / "wide.pt")
    _save_model(tmp_path / "split.pt", arch="splitformer")  # no branch weights in the file
    with pytest.raises(CheckpointError, match="weights do not match.*splitformer"):
        load_model(tmp_path / "split.pt")
    _save_model(tmp_path / "bad.pt", exit_layers=[9])  # settings that do not build a model
    with pytest.raises(CheckpointError, match="encoder settings are not valid"):
        load_model(tmp_path / "bad.pt")
    atomic_save({"encoder_config": [1], "model": {}}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="not an asr_ee checkpoint"):
        load_model(tmp_path / "odd.pt")


def test_partial_saves_are_removed(tmp_path: Path) -> None:
    atomic_save({"x": 1}, tmp_path / "step-00000004.pt")
    leftover = tmp_path / ".step-00000008.pt.k3j_x.tmp"  # what a kill during atomic_save leaves
    leftover.write_bytes(b"half")
    assert remove_partial_saves(tmp_path) == [leftover]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000004.pt"]
    assert remove_partial_saves(tmp_path / "missing") == []


def test_loading_a_model_twice_leaves_one_tokenizer_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tokenizer inside a model file is written once per distinct tokenizer, not once per load."""
    import tempfile

    from asr_ee.checkpoint import export_model
    from asr_ee.data.tokenizer import train_tokenizer
    from asr_ee.pretrained import load_pretrained

    words = ["early exits save compute", "speech comes chunk by chunk", "the last word is kept"]
    tok = train_tokenizer(words * 20, tmp_path / "tok" / "bpe", vocab_size=32)
    model = build_encoder(preset("tiny", vocab_size=32))
    export_model({"encoder_config": to_dict(model.cfg), "model": model.state_dict()}, tok, tmp_path / "m.pt")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    first, second = load_pretrained(tmp_path / "m.pt"), load_pretrained(tmp_path / "m.pt")
    assert first.tokenizer.path == second.tokenizer.path
    assert [p.relative_to(scratch) for p in scratch.rglob("*")] == [
        Path("asr_ee-tokenizers"), Path("asr_ee-tokenizers") / first.tokenizer.path.name]
    assert first.tokenizer.path.read_bytes() == Path(tok).read_bytes()
