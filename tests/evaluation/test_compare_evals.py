"""scripts/compare_evals.py: two models' evaluations of one split, B against A with a paired interval."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest


def _write(folder: Path, errors: list[int], *, gz: bool = True, ids: list[str] | None = None) -> None:
    folder.mkdir(parents=True)
    lines = "".join(json.dumps({"id": i, "reference": "one two three four five",
                                "word_errors": {"lm": [9, e], "greedy": [9, e + 1]}}) + "\n"
                    for i, e in zip(ids or [f"u{k}" for k in range(len(errors))], errors))
    if gz:
        with gzip.open(folder / "utterances.jsonl.gz", "wt") as f:
            f.write(lines)
    else:
        (folder / "utterances.jsonl").write_text(lines)


def test_b_against_a_on_the_same_utterances(tmp_path: Path, capsys: pytest.CaptureFixture[str], script) -> None:
    a_errors = [1, 0, 2, 1, 0] * 20          # 80 errors on 500 words
    b_errors = [0, 0, 1, 1, 0] * 20          # 40: B halves them on every group of five
    _write(tmp_path / "a" / "test", a_errors)
    _write(tmp_path / "b" / "test", b_errors, gz=False)
    _write(tmp_path / "a" / "only_a", [1])
    assert script("compare_evals").main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| test ")]
    assert len(rows) == 1 and "only_a" not in out
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1:5] == ["100", "500", "16.00", "8.00"]
    change, interval = cells[5].split(" ", 1)
    low, high = (float(x) for x in interval.strip("[]").split(","))
    assert change == "-50.0%" and low < -50.0 < high < 0      # resolved: the interval misses 0
    assert script("compare_evals").main([str(tmp_path / "a"), str(tmp_path / "b"), "--decoding", "greedy",
                           "--exit-index", "0"]) == 0
    assert "| test | 100 | 500 | 180.00 | 180.00 | +0.0% [+0.0, +0.0] |" in capsys.readouterr().out


def test_different_utterances_are_refused(tmp_path: Path, script) -> None:
    _write(tmp_path / "a" / "dev", [1, 2])
    _write(tmp_path / "b" / "dev", [1, 2], ids=["x", "y"])
    with pytest.raises(SystemExit, match="different utterances"):
        script("compare_evals").main([str(tmp_path / "a"), str(tmp_path / "b")])


def test_a_file_or_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], script) -> None:
    results = tmp_path / "eval" / "test" / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text("{}")
    assert script("compare_evals").main([str(results), str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert "is not an evaluation folder" in err and f"give its parent, {tmp_path / 'eval'}" in err
    assert script("compare_evals").main([str(tmp_path / "eval"), str(tmp_path / "missing")]) == 2
    assert "missing is not an evaluation folder" in capsys.readouterr().err
