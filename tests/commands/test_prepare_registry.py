"""``asr-ee prepare``: one registry of corpora that argparse, its help and dispatch read."""

from __future__ import annotations

import dataclasses

import pytest

from asr_ee.cli import main
from asr_ee.commands.prepare import CORPORA


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_every_registered_corpus_loads(name: str) -> None:
    config_class, prepare = CORPORA[name].load()
    assert dataclasses.is_dataclass(config_class) and callable(prepare)


def test_help_and_choices_come_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    out = capsys.readouterr().out
    for name, corpus in CORPORA.items():
        assert name in out and corpus.help.split(":")[0][:40] in " ".join(out.split())
    with pytest.raises(SystemExit):
        main(["prepare", "no-such-corpus", "--config", "x", "--output-dir", "y"])
    assert "invalid choice" in capsys.readouterr().err
