"""``asr-ee lm`` end to end: build an LM for a model's tokenizer, then decode with it through
``evaluate`` and ``transcribe``; and the clear errors around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr_ee.cli import main


@pytest.fixture(scope="module")
def lm_path(overfit_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lm")
    text = root / "text.txt"
    text.write_text("\n".join(overfit_model.texts * 3 + ["a sentence that only the language model reads"]) + "\n")
    exclude = root / "exclude.txt"
    exclude.write_text("a sentence that only the language model reads\n")
    out = root / "lm.pt"
    assert main(["lm", "--tokenizer", str(overfit_model.data_dir / "tokenizer" / "bpe.model"), "--text", str(text),
                 "--exclude", str(exclude), "--order", "3", "--min-count", "1", "--output", str(out)]) == 0
    return out


def test_lm_command_writes_a_tied_lm(lm_path: Path, overfit_model, capsys: pytest.CaptureFixture) -> None:
    from asr_ee.data.tokenizer import Tokenizer
    from asr_ee.decoding.kenlm import load_lm

    lm = load_lm(lm_path)
    assert lm.path == lm_path.with_name("lm.arpa.gz")   # the ARPA file written beside, read by KenLM
    tokenizer = Tokenizer(overfit_model.data_dir / "tokenizer" / "bpe.model")
    assert lm.order == 3 and lm.vocab_size == tokenizer.vocab_size
    assert lm.info["tokenizer"] == tokenizer.fingerprint
    assert lm.info["kept"] == 3 * len(overfit_model.texts) and lm.info["overlapping_excluded"] == 1
    lm.check_tokenizer(tokenizer)
    # the LM prefers the sentences it was built from to the same words shuffled
    words = overfit_model.texts[0].split()
    assert lm.score_tokens(tokenizer.encode(" ".join(words))) > lm.score_tokens(tokenizer.encode(" ".join(words[::-1])))


def test_evaluate_reports_the_lm_decoding(lm_path: Path, overfit_model, tmp_path: Path) -> None:
    from asr_ee.inputs import from_files  # noqa: F401  (the files below are the overfit utterances)

    kaldi = tmp_path / "text"
    kaldi.write_text("".join(f"{w.stem} {t}\n" for w, t in zip(overfit_model.wavs, overfit_model.texts)))
    out = tmp_path / "eval"
    assert main(["evaluate", "--audio-dir", str(overfit_model.wavs[0].parent), "--transcripts", str(kaldi),
                 "--model", str(overfit_model.path), "--decoding", "greedy+lm", "--lm", str(lm_path),
                 "--output-dir", str(out), "--quiet", "--no-plot", "--criteria", "fixed"]) == 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["settings"]["decodings"] == ["greedy", "lm"]
    assert summary["settings"]["lm_weight"] == pytest.approx(0.8)
    last = {r["decoding"]: r for r in summary["per_exit"] if r["exit_index"] == len(summary["exit_layers"]) - 1}
    assert last["greedy"]["wer"] == 0.0 and last["lm"]["wer"] == 0.0


def test_transcribe_with_the_lm(lm_path: Path, overfit_model, capsys: pytest.CaptureFixture,
                                tmp_path: Path) -> None:
    # no silence appended at the end: the overfit model never heard any and says "s" into it
    # (greedy too: "light side" -> "light sides"), which is not what this test is about
    (tmp_path / "no_tail.yaml").write_text("tail_silence_ms: 0.0\n")
    argv = ["transcribe", "--model", str(overfit_model.path), "--criterion", "none", "--no-controller",
            "--no-endpoint", "--config", str(tmp_path / "no_tail.yaml"), *map(str, overfit_model.wavs)]
    assert main(argv + ["--lm", str(lm_path)]) == 0
    with_lm = [line.split("\t", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert with_lm == overfit_model.texts


@pytest.mark.parametrize("extra, message", [
    (["--decoding", "greedy"], "cannot use a language model"),
    (["--no-lm"], "--lm and --no-lm contradict"),
])
def test_transcribe_lm_option_conflicts(extra: list[str], message: str, lm_path: Path, overfit_model,
                                        capsys: pytest.CaptureFixture) -> None:
    argv = ["transcribe", "--model", str(overfit_model.path), "--lm", str(lm_path), *extra, str(overfit_model.wavs[0])]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_greedy_config_file_keeps_the_lm_out(lm_path: Path, overfit_model, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "greedy.yaml").write_text("decoding: greedy\n")
    argv = ["transcribe", "--model", str(overfit_model.path), "--config", str(tmp_path / "greedy.yaml"),
            str(overfit_model.wavs[0])]
    assert main(argv + ["--lm", str(lm_path)]) == 2
    assert "cannot use a language model" in capsys.readouterr().err
    assert main(argv) == 0


def test_an_lm_of_another_tokenizer_is_refused(lm_path: Path, eval_model: Path, eval_data, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", str(eval_data.cuts), "--model", str(eval_model), "--decoding", "lm", "--lm", str(lm_path),
                 "--output-dir", str(tmp_path / "e"), "--quiet"]) == 2
    assert "built for another tokenizer" in capsys.readouterr().err


def test_lm_decoding_needs_an_lm_for_other_models(eval_model: Path, eval_data, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", str(eval_data.cuts), "--model", str(eval_model), "--decoding", "lm",
                 "--output-dir", str(tmp_path / "e"), "--quiet"]) == 2
    assert "needs --lm PATH" in capsys.readouterr().err


def test_lm_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["lm", "--output", str(tmp_path / "lm.pt")]) == 2
    assert "give --data-dir" in capsys.readouterr().err
    (tmp_path / "corpus" / "text").mkdir(parents=True)
    assert main(["lm", "--data-dir", str(tmp_path / "corpus"), "--output", str(tmp_path / "lm.pt")]) == 2
    assert "no evaluation sentences" in capsys.readouterr().err


def test_streaming_benchmark_with_an_lm(eval_model: Path, eval_data, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    """benchmarks/streaming_rtf.py --lm: every run decodes with beam search + LM, full depth included."""
    import importlib.util
    import sys

    from asr_ee.decoding.lm import build_ngram
    from asr_ee.pretrained import load_pretrained

    tokenizer = load_pretrained(eval_model).tokenizer
    lm = build_ngram(tokenizer.encode_batch(list(eval_data.texts.values())), tokenizer.vocab_size, order=3)
    lm.info["tokenizer"] = tokenizer.fingerprint
    lm.save(tmp_path / "lm.pt")
    bench = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location("streaming_rtf", bench / "streaming_rtf.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["streaming_rtf"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    assert module.main(["--model", str(eval_model), "--cuts", str(eval_data.cuts), "--limit", "2", "--thresholds",
                        "0.5", "--policies", "copy", "--chunk-frames", "4", "--lm", str(tmp_path / "lm.pt"),
                        "--json-out", str(tmp_path / "out.json")]) == 0
    out = capsys.readouterr().out
    assert f"language model {tmp_path / 'lm.pt'} fused" in out
    runs = json.loads((tmp_path / "out.json").read_text())
    assert [(r["name"], r["policy"]) for r in runs] == [("full depth", "-"), ("entropy@0.5", "copy")]
    assert runs[0]["compute"] == pytest.approx(1.0) and runs[0]["words"] > 0
    for r in runs:  # per-utterance errors add up; full depth against itself: no change, no interval width
        assert len(r["utterance_errors"]) == 2 and sum(r["utterance_errors"]) == r["errors"]
    assert runs[0]["rel_wer_ci95"] in (None, [0.0, 0.0])  # None when full depth makes no error
