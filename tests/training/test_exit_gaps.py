"""scripts/exit_gaps.py: per exit, the CTC loss and KL(last || exit) it prints are the training
losses' own values on the same utterances (multi_exit_ctc_loss, exit_distillation_loss)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch

from asr_ee.config import apply_overrides
from asr_ee.data.datamodule import batch_lengths, make_valid_loader
from asr_ee.exits.loss import exit_distillation_loss, multi_exit_ctc_loss
from asr_ee.pretrained import load_pretrained
from asr_ee.training import TrainConfig

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "exit_gaps.py"


def test_prints_the_losses_of_each_exit(overfit_model, one_torch_thread, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["exit_gaps.py", "--model", str(overfit_model.path), "--data-dir",
                                      str(overfit_model.data_dir), "--full-context", "--batches", "1"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert done.value.code == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines()[2:]]

    pretrained = load_pretrained(overfit_model.path, None)
    encoder = pretrained.encoder.eval().float()
    cfg = apply_overrides(TrainConfig(), [f"data.data_dir={overfit_model.data_dir}", "data.max_duration=60"])
    batch = next(iter(make_valid_loader(cfg.data)))
    lengths, texts, _ = batch_lengths(batch)
    with torch.no_grad():
        outs, out_lens = encoder(batch["inputs"], lengths)
        kl = exit_distillation_loss(outs, out_lens)[1]
        ctc = multi_exit_ctc_loss(outs, out_lens, pretrained.tokenizer.encode_batch(texts))[1]
    assert [int(r[0]) for r in rows] == list(encoder.cfg.exit_layers)
    for k, row in enumerate(rows):
        assert float(row[1]) == pytest.approx(float(ctc[k]), abs=0.006)
        if k < len(rows) - 1:
            assert float(row[2]) == pytest.approx(float(kl[k]), abs=0.006)
        else:
            assert row[2].strip() == "-"  # the last exit is the teacher
