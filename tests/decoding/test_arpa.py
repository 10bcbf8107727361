"""The token LM as ARPA for KenLM: KenLM's log-probabilities equal the Kneser-Ney estimate, the
information beside the file ties it to its tokenizer and its ``.pt``, and loading finds the right file."""

from __future__ import annotations

import gzip
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from asr_ee.config import ConfigError
from asr_ee.decoding.arpa import read_sidecar, sidecar_path, write_arpa
from asr_ee.decoding.kenlm import TokenLM, arpa_beside, as_token_lm, lm_files, load_token_lm, write_lm_files
from asr_ee.decoding.kenlm import load_lm
from asr_ee.decoding.lm import NgramLM, build_ngram

V = 12  # ids 1..11 are tokens, 0 is blank; 9..11 never occur in the text


def _corpus(seed: int = 0, n: int = 400) -> list[list[int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        seq: list[int] = []
        for _ in range(rng.randint(1, 9)):
            t = rng.choice([1, 2, 3, 5, 6, 7, 8])
            seq += [3, 4] if t == 3 else [t]
        out.append(seq)
    return out


def _sequences(seed: int, count: int = 300) -> list[list[int]]:
    """Random token sequences (unseen contexts and never-seen tokens included)."""
    rng = random.Random(seed)
    return [[rng.randint(1, V - 1) for _ in range(rng.randint(0, 10))] for _ in range(count)]


def _token_lm(lm: NgramLM, path: Path) -> TokenLM:
    write_arpa(lm, path)
    return TokenLM(path, read_sidecar(path))


@pytest.mark.parametrize("order", [2, 3, 4, 6])
@pytest.mark.parametrize("min_count", [1, 3])
def test_kenlm_scores_equal_the_kneser_ney_estimate(order: int, min_count: int, tmp_path: Path) -> None:
    lm = build_ngram(_corpus(), V, order=order, min_count=min_count)
    kenlm = _token_lm(lm, tmp_path / "lm.arpa")
    for tokens in _sequences(order):
        state = lm.start()
        for i, token in enumerate(tokens):  # every token in context, not only the sums
            assert kenlm.log_prob(tokens[:i], token) == pytest.approx(lm.log_prob(state, token), abs=1e-5)
            state = lm.advance(state, token)
        assert kenlm.log_prob(tokens, None) == pytest.approx(lm.log_prob(state, lm.eos), abs=1e-5)
        assert kenlm.score_tokens(tokens) == pytest.approx(lm.score_tokens(tokens), abs=1e-4)
        assert kenlm.score_tokens(tokens, with_end=False) == pytest.approx(lm.score_tokens(tokens, with_end=False),
                                                                          abs=1e-4)


def test_the_arpa_file_is_a_proper_back_off_model(tmp_path: Path) -> None:
    """Header counts match the sections, every unigram is listed (blank as <unk>), one <s>."""
    lm = build_ngram(_corpus(), V, order=3)
    path = write_arpa(lm, tmp_path / "lm.arpa.gz")
    lines = gzip.open(path, "rt", encoding="utf-8").read().splitlines()
    declared = {int(ln.split()[1].split("=")[0]): int(ln.split("=")[1]) for ln in lines if ln.startswith("ngram ")}
    sections: dict[int, list[str]] = {}
    current = None
    for ln in lines:
        if ln.endswith("-grams:"):
            current = int(ln[1:].split("-")[0])
            sections[current] = []
        elif ln and not ln.startswith("\\") and current is not None:
            sections[current].append(ln)
    assert declared == {n: len(rows) for n, rows in sections.items()}
    unigrams = {row.split("\t")[1] for row in sections[1]}
    assert unigrams == {"<unk>", "<s>", "</s>"} | {str(t) for t in range(1, V)}
    assert all(float(row.split("\t")[0]) <= 0 for rows in sections.values() for row in rows)
    assert not any(row.split("\t")[1].startswith("<s> <s>") for rows in sections.values() for row in rows)


def test_lm_files_beside_the_counts_are_found_without_conversion(tmp_path: Path) -> None:
    lm = build_ngram(_corpus(), V, order=3)
    lm.info["tokenizer"] = "abc123"
    arpa = write_lm_files(lm, tmp_path / "lm.pt")
    assert arpa == arpa_beside(tmp_path / "lm.pt") == tmp_path / "lm.arpa.gz"
    info = read_sidecar(arpa)
    assert info["tokenizer"] == "abc123" and info["order"] == 3 and info["vocab_size"] == V
    loaded = load_lm(tmp_path / "lm.pt")
    assert loaded.path == arpa                                    # not a cached conversion
    copied = tmp_path / "export"
    copied.mkdir()
    for f in lm_files(tmp_path / "lm.pt"):                        # what an export copies
        shutil.copy(f, copied / f.name)
    assert load_lm(copied / "lm.pt").path == copied / "lm.arpa.gz"
    assert load_token_lm(arpa).info == loaded.info
    assert loaded.score_tokens([1, 3, 4, 2]) == pytest.approx(lm.score_tokens([1, 3, 4, 2]), abs=1e-4)


def test_a_pt_lm_without_its_arpa_file_is_converted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("ASR_EE_CACHE", str(tmp_path / "cache"))
    first = build_ngram(_corpus(0), V, order=3)
    write_lm_files(first, tmp_path / "lm.pt")
    second = build_ngram(_corpus(1), V, order=3)
    second.save(tmp_path / "lm.pt")                # replaced by hand: the ARPA beside is stale now
    loaded = load_lm(tmp_path / "lm.pt")
    assert loaded.path.parent == tmp_path / "cache" / "lm"
    assert "converting" in capsys.readouterr().err
    assert loaded.score_tokens([5, 6, 7]) == pytest.approx(second.score_tokens([5, 6, 7]), abs=1e-4)
    assert loaded.score_tokens([5, 6, 7]) != pytest.approx(first.score_tokens([5, 6, 7]), abs=1e-4)
    assert load_lm(tmp_path / "lm.pt").path == loaded.path     # cached: no second conversion
    assert "converting" not in capsys.readouterr().err


def test_an_lm_in_memory_becomes_one_shared_kenlm_model() -> None:
    lm = build_ngram(_corpus(), V, order=3)
    token_lm = as_token_lm(lm)
    assert as_token_lm(lm) is token_lm and as_token_lm(token_lm) is token_lm
    assert not token_lm.path.exists()              # KenLM keeps the model in memory; the file is gone
    assert token_lm.score_tokens([1, 3, 4]) == pytest.approx(lm.score_tokens([1, 3, 4]), abs=1e-4)


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_lm(tmp_path / "missing.pt")
    (tmp_path / "bare.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\t<unk>\n\n\\end\\\n")
    with pytest.raises(ConfigError, match="no asr_ee LM information"):
        load_lm(tmp_path / "bare.arpa")
    with pytest.raises(ConfigError, match="order of at least 2"):
        as_token_lm(build_ngram(_corpus(), V, order=1))
    lm = build_ngram(_corpus(), V, order=2)
    path = write_arpa(lm, tmp_path / "lm.arpa")
    path.write_text("not an arpa file\n")
    with pytest.raises(ConfigError, match="KenLM cannot read"):
        load_lm(path).kenlm()
    assert sidecar_path(path).is_file()


def test_the_tokenizer_check_reads_the_information_beside(tmp_path: Path) -> None:
    tokenizer = SimpleNamespace(vocab_size=V, fingerprint="abc123")  # what the check reads of a Tokenizer
    lm = build_ngram(_corpus(), V, order=2)
    lm.info["tokenizer"] = "abc123"
    write_lm_files(lm, tmp_path / "good.pt")
    load_lm(tmp_path / "good.pt").check_tokenizer(tokenizer)
    lm.info["tokenizer"] = "another"
    write_lm_files(lm, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="built for another tokenizer"):
        load_lm(tmp_path / "other.pt").check_tokenizer(tokenizer)
    with pytest.raises(ConfigError, match="built for another tokenizer"):
        load_lm(tmp_path / "good.pt").check_tokenizer(SimpleNamespace(vocab_size=V + 1, fingerprint="abc123"))


def test_decoding_with_an_arpa_lm_needs_no_torch(tmp_path: Path) -> None:
    """The decode-time path (load the LM, beam search with it, greedy) never imports torch, so the
    ONNX runtime can use it."""
    write_lm_files(build_ngram(_corpus(), V, order=3), tmp_path / "lm.pt")
    script = f"""
import sys
import numpy as np
from asr_ee.decoding.ctc import BeamStreamDecoder, greedy_decode
from asr_ee.decoding.kenlm import load_lm
lm = load_lm({str(tmp_path / 'lm.pt')!r})
lp = np.log(np.full((30, {V}), 0.02, dtype=np.float32))
lp[::3, 1] = lp[1::3, 3] = lp[2::3, 0] = np.log(0.8)
decoder = BeamStreamDecoder(beam=4, lm=lm, lm_weight=0.5, length_bonus=1.0)
decoder.accept(lp[:13]); decoder.accept(lp[13:])
assert decoder.tokens and greedy_decode(lp)
assert "torch" not in sys.modules, "torch was imported"
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert math.isfinite(load_lm(tmp_path / "lm.pt").score_tokens([1, 3]))
