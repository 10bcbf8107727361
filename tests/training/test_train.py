"""Training: loss falls, a SIGKILLed run resumes on exactly the batches it had left, DDP on 2 CPU
processes trains the same model as one process with the same global batches, averaging works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asr_ee.checkpoint import average_checkpoints, list_checkpoints, load_checkpoint
from asr_ee.config import ConfigError, apply_overrides, from_dict, save_yaml
from asr_ee.training import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


def _config(data_dir: Path, **top: object) -> TrainConfig:
    from asr_ee.data.tokenizer import Tokenizer

    vocab = Tokenizer(data_dir / "tokenizer" / "bpe.model").vocab_size
    cfg = from_dict(TrainConfig, {
        "encoder": {"d_model": 32, "num_layers": 4, "num_heads": 2, "ffn_dim": 64, "conv_kernel": 5,
                    "exit_layers": [2, 4], "vocab_size": vocab, "subsampling_channels": 8, "dropout": 0.0},
        "data": {"data_dir": str(data_dir), "noise_cuts": None, "spec_augment": False, "max_duration": 12.0,
                 "num_buckets": 2},
        "optim": {"peak_lr": 0.003, "warmup_steps": 5},
        "num_epochs": 50, "checkpoint_every_steps": 4, "keep_last_checkpoints": 100, "log_batch_ids": True,
        "valid_max_batches": 1, "num_threads": 1, "seed": 3,
    })
    return apply_overrides(cfg, [f"{k}={v}" for k, v in top.items()])


def _batches(exp_dir: Path, rank: int = 0) -> dict[int, str]:
    """step -> cut ids, the last writer of a step winning (a resumed run rewrites nothing before it)."""
    out: dict[int, str] = {}
    for line in (exp_dir / f"batches.rank{rank}.log").read_text().splitlines():
        step, ids = line.split("\t")
        out[int(step)] = ids
    return out


def _run_cli(cfg: TrainConfig, exp_dir: Path, *extra: str) -> subprocess.Popen:
    yaml_path = exp_dir.parent / f"{exp_dir.name}.yaml"
    save_yaml(cfg, yaml_path)
    return subprocess.Popen([sys.executable, "-m", "asr_ee.cli", "train", "--config", str(yaml_path),
                             "--exp-dir", str(exp_dir), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _dev_loss(cfg: TrainConfig, weights: dict | None) -> list[float]:
    from asr_ee.data.datamodule import make_valid_loader
    from asr_ee.data.tokenizer import Tokenizer
    from asr_ee.models import build_encoder
    from asr_ee.training import _validate

    torch.manual_seed(cfg.seed)
    model = build_encoder(cfg.encoder)
    if weights is not None:
        model.load_state_dict(weights)
    tokenizer = Tokenizer(cfg.data.path(cfg.data.tokenizer))
    return _validate(model, make_valid_loader(cfg.data), tokenizer, torch.device("cpu"), 10, None)


def test_loss_decreases_and_exits_logged(tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_corpus, max_steps=40, checkpoint_every_steps=20)
    train(cfg, tmp_path / "exp")
    first, last = (load_checkpoint(p) for p in list_checkpoints(tmp_path / "exp" / "checkpoints", "step-"))
    assert first["run"]["step"] == 20 and last["run"]["step"] == 40
    before, after = _dev_loss(cfg, None), _dev_loss(cfg, last["model"])
    assert len(before) == len(after) == 2
    assert all(a < 0.8 * b for a, b in zip(after, before)), (before, after)
    assert (tmp_path / "exp" / "tensorboard").is_dir() and (tmp_path / "exp" / "train.yaml").is_file()
    scalars = list((tmp_path / "exp" / "tensorboard").glob("events.*"))
    assert scalars and scalars[0].stat().st_size > 0


def test_sigkill_then_resume_continues_exactly(tiny_corpus: Path, tmp_path: Path) -> None:
    """With noise mixing, frequency warping, SpecAugment and copy-stream training (random per-chunk exits) on:
    the same batches and the same final weights."""
    cfg = _config(tiny_corpus, max_steps=40, **{"data.noise_cuts": "cuts_noise.jsonl.gz", "data.noise_prob": 0.5,
                                                "data.spec_augment": True, "data.freq_warp": 0.1,
                                                "chunk.skip_prob": 0.5})
    reference = tmp_path / "reference"
    assert _run_cli(cfg, reference).wait(timeout=600) == 0
    killed = tmp_path / "killed"
    proc = _run_cli(cfg, killed)
    deadline = time.time() + 300
    while not list_checkpoints(killed / "checkpoints", "step-") and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpts = list_checkpoints(killed / "checkpoints")
    assert ckpts, "the run was killed before writing a checkpoint"
    resumed_from = load_checkpoint(ckpts[-1])["run"]["step"]
    assert resumed_from < 40, "the run finished before it could be killed"
    assert _run_cli(cfg, killed, "--resume").wait(timeout=600) == 0
    ref, got = _batches(reference), _batches(killed)
    assert sorted(got) == list(range(1, 41))
    assert got == ref, "resumed run trained on different batches"
    final_ref = load_checkpoint(list_checkpoints(reference / "checkpoints")[-1])["model"]
    final_got = load_checkpoint(list_checkpoints(killed / "checkpoints")[-1])["model"]
    for key in final_ref:
        torch.testing.assert_close(final_got[key], final_ref[key], atol=1e-5, rtol=1e-4)


def test_existing_run_needs_resume(tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_corpus, max_steps=4)
    train(cfg, tmp_path / "exp")
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tmp_path / "exp")


def test_ddp_two_cpu_processes_match_single_process(tiny_corpus: Path, tmp_path: Path) -> None:
    steps = 6
    single = _config(tiny_corpus, max_steps=steps, **{"optim.accum_grad": 2, "data.sync_buckets": False})
    train(single, tmp_path / "single")
    ddp_cfg = _config(tiny_corpus, max_steps=steps, **{"data.sync_buckets": False})
    yaml_path = tmp_path / "ddp.yaml"
    save_yaml(ddp_cfg, yaml_path)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29517", "-m", "asr_ee.cli", "train", "--config", str(yaml_path), "--exp-dir",
                           str(tmp_path / "ddp")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp_ckpts = list_checkpoints(tmp_path / "ddp" / "checkpoints")
    assert [p.name for p in ddp_ckpts] == [p.name for p in list_checkpoints(tmp_path / "single" / "checkpoints")]
    single_batches = _batches(tmp_path / "single")
    rank_batches = [_batches(tmp_path / "ddp", r) for r in (0, 1)]
    for step in range(1, steps + 1):
        assert rank_batches[0][step] + " " + rank_batches[1][step] == single_batches[step]
    a = load_checkpoint(ddp_ckpts[-1])["model"]
    b = load_checkpoint(list_checkpoints(tmp_path / "single" / "checkpoints")[-1])["model"]
    params = {k for k in a if "running_" not in k and "num_batches_tracked" not in k}
    for key in params:
        torch.testing.assert_close(a[key], b[key], atol=2e-4, rtol=1e-3)


def test_average_checkpoints(tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_corpus, max_steps=8)
    train(cfg, tmp_path / "exp")
    paths = list_checkpoints(tmp_path / "exp" / "checkpoints", "step-")
    avg = average_checkpoints(paths)
    states = [load_checkpoint(p)["model"] for p in paths]
    key = next(k for k in avg["model"] if k.endswith("weight"))
    torch.testing.assert_close(avg["model"][key], (states[0][key] + states[1][key]) / 2)


@pytest.mark.parametrize("path", sorted(REPO.glob("recipes/*/conf/train_*.yaml")), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_recipe_train_configs_load(path: Path) -> None:
    from asr_ee.config import load_yaml
    from asr_ee.models import build_encoder

    cfg = load_yaml(TrainConfig, path)
    assert cfg.encoder.exit_layers[-1] == cfg.encoder.num_layers
    build_encoder(cfg.encoder)  # the config builds a model


def test_typo_in_config_is_an_error(tmp_path: Path) -> None:
    from asr_ee.config import load_yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  peak_lrr: 0.1\n")
    with pytest.raises(ConfigError, match="peak_lrr"):
        load_yaml(TrainConfig, bad)


def test_augmented_batches_on_the_fly(tiny_corpus: Path) -> None:
    """On-the-fly features with noise mixing, reverberation and SpecAugment: batches still match
    the cuts (lengths, texts) and differ from the clean precomputed features."""
    from asr_ee.data.datamodule import batch_lengths, make_train_loader

    clean_cfg = _config(tiny_corpus).data
    aug_cfg = apply_overrides(_config(tiny_corpus), [
        "data.on_the_fly_features=true", "data.reverb_prob=1.0", "data.noise_prob=1.0",
        "data.noise_cuts=cuts_noise.jsonl.gz", "data.spec_augment=true"]).data
    clean_loader, _ = make_train_loader(clean_cfg, seed=1)
    aug_loader, _ = make_train_loader(aug_cfg, seed=1)
    clean, aug = next(iter(clean_loader)), next(iter(aug_loader))
    c_lens, c_texts, c_ids = batch_lengths(clean)
    a_lens, a_texts, a_ids = batch_lengths(aug)
    assert a_texts == c_texts and len(a_ids) == len(c_ids)
    assert torch.all((a_lens - c_lens).abs() <= 2)
    frames = int(min(a_lens.min(), c_lens.min()))
    assert (aug["inputs"][:, :frames] - clean["inputs"][:, :frames]).abs().mean() > 0.1


def test_reverb_needs_audio_features(tiny_corpus: Path) -> None:
    from asr_ee.data.datamodule import make_train_loader

    cfg = apply_overrides(_config(tiny_corpus), ["data.reverb_prob=0.5"]).data
    with pytest.raises(ConfigError, match="on_the_fly_features"):
        make_train_loader(cfg, seed=0)


def test_train_without_prepared_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from asr_ee.cli import main

    config = tmp_path / "train.yaml"
    config.write_text("data:\n  data_dir: " + str(tmp_path / "nothing_here") + "\n")
    assert main(["train", "--config", str(config), "--exp-dir", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err
    assert "asr-ee train:" in err and "nothing_here" in err and "asr-ee prepare" in err


def test_resume_with_another_encoder_is_refused(tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_corpus, max_steps=4)
    train(cfg, tmp_path / "exp")
    other = apply_overrides(cfg, ["encoder.d_model=48", "max_steps=8"])
    with pytest.raises(ConfigError, match="different encoder config"):
        train(other, tmp_path / "exp", resume=True)


@pytest.mark.parametrize("override", ["optim.warmup_steps=0", "optim.accum_grad=0", "exit_loss_weights=[1.0]"])
def test_optimizer_settings_that_cannot_train_are_refused(override: str) -> None:
    with pytest.raises(ConfigError):
        apply_overrides(TrainConfig(), [override])


def test_init_from_starts_from_those_weights(tiny_corpus: Path, tmp_path: Path) -> None:
    """Fine-tuning: a new run with init_from starts from the given weights (its step-0 dev loss is
    the source's), with a fresh step counter; a model of another shape is refused."""
    from asr_ee.checkpoint import export_model

    src = _config(tiny_corpus, max_steps=12)
    train(src, tmp_path / "src")
    state = load_checkpoint(list_checkpoints(tmp_path / "src" / "checkpoints")[-1])
    model_path = tmp_path / "model.pt"
    export_model(state, tiny_corpus / "tokenizer" / "bpe.model", model_path, half=False)
    fresh = _dev_loss(src, None)
    trained = _dev_loss(src, state["model"])
    assert trained[-1] < fresh[-1]

    ft = _config(tiny_corpus, max_steps=1, init_from=str(model_path), checkpoint_every_steps=1)
    ft = apply_overrides(ft, ["optim.peak_lr=1e-9"])  # one step that barely moves: weights stay the source's
    assert ft.optim.peak_lr == 1e-9  # "1e-9" is a string to YAML 1.1; the config reads it as a number
    train(ft, tmp_path / "ft")
    first = load_checkpoint(list_checkpoints(tmp_path / "ft" / "checkpoints")[0])
    assert first["run"]["step"] == 1
    assert _dev_loss(src, first["model"]) == pytest.approx(trained, rel=1e-3)

    other = apply_overrides(ft, ["encoder.d_model=48"])
    with pytest.raises(ConfigError, match=r"different encoder config.*d_model"):
        train(other, tmp_path / "other")
    # no weight depends on the dropout rate: fine-tuning with more dropout starts from the same weights
    regularized = apply_overrides(ft, ["encoder.dropout=0.3"])
    train(regularized, tmp_path / "regularized")
    first = load_checkpoint(list_checkpoints(tmp_path / "regularized" / "checkpoints")[0])
    assert _dev_loss(src, first["model"]) == pytest.approx(trained, rel=1e-3)


def test_on_the_fly_features_ignore_stale_feature_manifests(tiny_corpus: Path, tmp_path: Path) -> None:
    """With on-the-fly features the cuts' precomputed features are dropped: cuts whose feature files
    are gone (audio copied to another machine) still train and validate."""
    import shutil

    from lhotse import CutSet

    from asr_ee.data.datamodule import make_train_loader, make_valid_loader

    data = tmp_path / "copy"
    (data / "tokenizer").mkdir(parents=True)
    shutil.copy(tiny_corpus / "tokenizer" / "bpe.model", data / "tokenizer" / "bpe.model")
    for name in ("cuts_train.jsonl.gz", "cuts_dev.jsonl.gz"):
        cuts = CutSet.from_file(tiny_corpus / name).to_eager()
        for cut in cuts:
            cut.features.storage_path = str(tmp_path / "gone" / "feats.lca")
        cuts.to_file(data / name)
    with pytest.raises(FileNotFoundError):  # the manifests really are stale
        next(iter(CutSet.from_file(data / "cuts_train.jsonl.gz"))).load_features()
    cfg = apply_overrides(_config(data), ["data.on_the_fly_features=true"]).data
    batch = next(iter(make_train_loader(cfg, seed=0)[0]))
    assert all(c.features is None for c in batch["supervisions"]["cut"])
    assert next(iter(make_valid_loader(cfg)))["inputs"].shape[-1] == 80


def test_cooldown_schedule_and_stop(tiny_corpus: Path, tmp_path: Path) -> None:
    from asr_ee.training import OptimConfig, _lr_lambda

    f = _lr_lambda(OptimConfig(warmup_steps=100, cooldown_start=400, cooldown_steps=200))
    assert f(50) == pytest.approx(0.5) and f(400) == pytest.approx(0.5)
    assert f(500) == pytest.approx((100 / 500) ** 0.5 * 0.5)  # half way down the ramp
    assert f(600) == 0.0 and f(700) == 0.0
    plain = _lr_lambda(OptimConfig(warmup_steps=100))
    assert plain(500) == pytest.approx((100 / 500) ** 0.5)
    with pytest.raises(ConfigError, match="cooldown_steps"):
        OptimConfig(cooldown_steps=0)
    cfg = _config(tiny_corpus, **{"optim.cooldown_start": 3, "optim.cooldown_steps": 3})
    last = train(cfg, tmp_path / "exp")
    assert load_checkpoint(last)["run"]["step"] == 6


def test_resume_without_checkpoint_says_so_and_partial_saves_go(tiny_corpus: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    cfg = _config(tiny_corpus, max_steps=2)
    leftover = tmp_path / "exp" / "checkpoints" / ".step-00000004.pt.abc.tmp"  # a kill during a save
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a checkpoint")
    train(cfg, tmp_path / "exp", resume=True)
    out = capsys.readouterr().out
    assert "holds no checkpoint; starting the run from scratch" in out
    assert f"removed {leftover}" in out and not leftover.exists()
