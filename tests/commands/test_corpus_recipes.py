"""recipes/{librispeech,tedlium}/run.sh share recipes/common/corpus_stages.sh: the commands each
stage runs, checked with a stand-in ``asr-ee`` that records its arguments."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(recipe: str, args: list[str], tmp_path: Path, **env: str) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.txt"
    fake = bin_dir / "asr-ee"
    fake.write_text(f'#!/usr/bin/env bash\necho "asr-ee $*" >> "{log}"\n')
    fake.chmod(0o755)
    full_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    subprocess.run([str(REPO / "recipes" / recipe / "run.sh"), *args], check=True, cwd=tmp_path, env=full_env)
    return log.read_text().splitlines() if log.is_file() else []


@pytest.mark.parametrize("recipe,conf,args", [("librispeech", "full960", ["/corpus", "full960"]),
                                              ("librispeech", "clean100", ["/corpus"]),
                                              ("tedlium", "tedlium3", ["/corpus"])])
def test_stages_run_the_corpus_commands(recipe: str, conf: str, args: list[str], tmp_path: Path) -> None:
    conf_dir = REPO / "recipes" / recipe / "conf"
    calls = _run(recipe, args, tmp_path, LM_TEXT="lm.txt")
    assert calls == [
        f"asr-ee prepare {recipe} --config {conf_dir}/{conf}.yaml --output-dir data/{recipe}_{conf} corpus_dir=/corpus",
        f"asr-ee train --config {conf_dir}/train_{conf}.yaml --data-dir data/{recipe}_{conf} "
        f"--exp-dir exp/{recipe}_{conf}",
        f"asr-ee lm --tokenizer data/{recipe}_{conf}/tokenizer/bpe.model --text lm.txt --order 4 --min-count 2 "
        f"--output exp/{recipe}_{conf}/lm.pt"]
    assert (conf_dir / f"{conf}.yaml").is_file() and (conf_dir / f"train_{conf}.yaml").is_file()


def test_stage_selection_and_paths_from_the_environment(tmp_path: Path) -> None:
    calls = _run("tedlium", ["/corpus"], tmp_path, STAGE="2", STOP_STAGE="2", DATA_DIR="d", EXP_DIR="e")
    assert len(calls) == 1 and calls[0].endswith("--data-dir d --exp-dir e")
    (tmp_path / "lm_only").mkdir()
    assert _run("tedlium", ["/corpus"], tmp_path / "lm_only", STAGE="3") == []  # no LM_TEXT: skipped


def test_a_missing_corpus_dir_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([str(REPO / "recipes" / "librispeech" / "run.sh")], capture_output=True, text=True)
    assert proc.returncode != 0 and "usage: recipes/librispeech/run.sh CORPUS_DIR [CONF]" in proc.stderr
