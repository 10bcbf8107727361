"""The console script: subcommands listed, `info` figures, `average --export` ships a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr_ee.cli import main


def test_help_lists_subcommands(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("prepare", "train", "average", "info", "evaluate", "transcribe", "mic"):
        assert name in out


@pytest.mark.parametrize("name,paper_params", [("paper", 31.5e6), ("paper-splitformer", 36.7e6)])
def test_info_paper_presets_match_paper_counts(name: str, paper_params: float,
                                                capsys: pytest.CaptureFixture) -> None:
    assert main(["info", "--config", name]) == 0
    info = json.loads(capsys.readouterr().out)
    assert abs(info["total_params"] - paper_params) / paper_params < 0.03
    assert info["exit_layers"] == [2, 4, 6, 8, 10, 12]
    exits = info["exits"]
    assert exits[-1]["params"] == info["total_params"]
    assert exits[-1]["compute_fraction"] == 1.0
    flops = [e["gflops_per_audio_second"] for e in exits]
    assert flops == sorted(flops) and flops[0] > 0


def test_info_counts_equal_the_built_model(capsys: pytest.CaptureFixture) -> None:
    from asr_ee.models import build_encoder, preset

    for name in ("small", "tiny-splitformer"):
        assert main(["info", "--config", name]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["total_params"] == sum(p.numel() for p in build_encoder(preset(name)).parameters())


def test_info_unknown_config_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["info", "--config", "no-such-preset"]) == 2
    assert "neither a preset" in capsys.readouterr().err


def test_average_export_ships_a_loadable_model(overfit_model, overfit_config, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    from asr_ee.config import apply_overrides
    from asr_ee.data.tokenizer import Tokenizer
    from asr_ee.pretrained import load_pretrained
    from asr_ee.training import train

    vocab = Tokenizer(overfit_model.data_dir / "tokenizer" / "bpe.model").vocab_size
    cfg = apply_overrides(overfit_config(overfit_model.data_dir, vocab, max_steps=6),
                          ["checkpoint_every_steps=2"])
    train(cfg, tmp_path / "run")
    out = tmp_path / "model.pt"
    assert main(["average", "--exp-dir", str(tmp_path / "run"), "--last", "2", "--output", str(out), "--export"]) == 0
    model = load_pretrained(out)
    assert model.tokenizer.vocab_size == vocab and model.encoder.cfg.vocab_size == vocab
    from asr_ee.checkpoint import checkpoint_step, list_checkpoints

    newest = list_checkpoints(tmp_path / "run" / "checkpoints")[-2:]
    assert [checkpoint_step(p) for p in newest] == [5, 6]  # one step per epoch here: epoch-0005-step-5, step-6
    assert model.info["averaged_from"] == [p.name for p in newest]
    assert main(["info", "--model", str(out)]) == 0
    assert "averaged 2 checkpoints" in capsys.readouterr().out


def test_average_needs_at_least_one_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["average", "--exp-dir", str(tmp_path), "--last", "0", "--output", str(tmp_path / "m.pt")]) == 2
    assert "--last must be >= 1" in capsys.readouterr().err
    assert main(["average", "--exp-dir", str(tmp_path), "--output", str(tmp_path / "m.pt")]) == 2
    assert "no checkpoints" in capsys.readouterr().err


def test_version_and_python_dash_m(capsys: pytest.CaptureFixture) -> None:
    import subprocess
    import sys

    import asr_ee

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"asr-ee {asr_ee.__version__}\n"
    proc = subprocess.run([sys.executable, "-m", "asr_ee", "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith(asr_ee.__version__)


def test_info_without_arguments_describes_the_shipped_model(capsys: pytest.CaptureFixture) -> None:
    from asr_ee.pretrained import DEFAULT_MODEL
    from asr_ee.streaming.factory import model_file_defaults

    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == str(DEFAULT_MODEL) and info["defaults"] == model_file_defaults()[1]
    assert info["exit_layers"] and info["exits"][-1]["compute_fraction"] == 1.0


@pytest.mark.parametrize("command", ["transcribe", "mic"])
def test_help_shows_the_models_own_defaults(command: str, capsys: pytest.CaptureFixture) -> None:
    from asr_ee.streaming.factory import model_file_defaults

    defaults = model_file_defaults()[1]
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exc.value.code == 0
    ceiling = defaults.get("max_exit_layer") or "the last exit"
    assert f"deepest exit any chunk may reach, a layer number (default: the model's; else the last exit) " \
           f"[model.pt: {ceiling}]" in out
    assert f"[model.pt: {defaults.get('lm') or 'none'}]" in out
