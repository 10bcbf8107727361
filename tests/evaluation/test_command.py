"""``asr-ee evaluate`` end to end: every input form, the output files and their schema, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from asr_ee.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PER_EXIT_KEYS = {"exit_layer", "wer", "ins", "del", "sub", "num_words", "compute_fraction", "decoding",
                 "gflops_per_audio_second", "encoder_seconds", "real_time_factor"}
POLICY_KEYS = {"criterion", "threshold", "wer", "avg_exit_layer", "compute_fraction", "granularity", "decoding",
               "ins", "del", "sub", "num_words", "pareto", "wer_change", "wer_change_ci95"}


def _evaluate(model: Path, out: Path, *args: str) -> tuple[int, dict | None]:
    rc = main(["evaluate", *args, "--model", str(model), "--output-dir", str(out), "--quiet", "--threads", "1"])
    results = out / "results.json"
    return rc, json.loads(results.read_text()) if results.is_file() else None


def _hypotheses(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "utterances.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def cuts_run(eval_model: Path, eval_data, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cuts_run")
    rc, results = _evaluate(eval_model, out, str(eval_data.cuts), "--decoding", "both", "--chunk-frames", "8")
    assert rc == 0
    return out, results


def test_results_json_schema(cuts_run: tuple[Path, dict]) -> None:
    _, results = cuts_run
    assert results["num_evaluated"] == 4 and results["failed"] == []
    assert results["exit_layers"] == [1, 2, 3, 4]
    assert len(results["per_exit"]) == 4 * 2
    for row in results["per_exit"]:
        assert PER_EXIT_KEYS <= set(row)
        assert row["num_words"] == 34 and 0 <= row["wer"]
        assert row["wer"] == pytest.approx(100 * (row["ins"] + row["del"] + row["sub"]) / row["num_words"], abs=1e-3)
    assert [r["compute_fraction"] for r in results["per_exit"][:4]] == sorted(r["compute_fraction"]
                                                                               for r in results["per_exit"][:4])
    assert results["per_exit"][3]["compute_fraction"] == 1.0
    kinds = {r["criterion"] for r in results["policies"]}
    assert kinds == {"entropy", "confidence", "confidence_min", "patience", "fixed", "oracle"}
    for row in results["policies"]:
        assert POLICY_KEYS <= set(row)
        assert row["granularity"] in ("utterance", "chunk") and row["decoding"] in ("greedy", "beam")
        assert 1 <= row["avg_exit_layer"] <= 4 and 0 < row["compute_fraction"] <= 1
        assert (row["threshold"] is None) == (row["criterion"] == "oracle")


def test_greedy_and_beam_are_both_reported(cuts_run: tuple[Path, dict]) -> None:
    out, results = cuts_run
    for key in ("per_exit", "policies"):
        assert {r["decoding"] for r in results[key]} == {"greedy", "beam"}
    assert {(r["granularity"], r["decoding"]) for r in results["policies"] if r["criterion"] == "oracle"} == \
           {(g, d) for g in ("utterance", "chunk") for d in ("greedy", "beam")}
    for utt in _hypotheses(out):
        assert len(utt["hypotheses"]["greedy"]) == len(utt["hypotheses"]["beam"]) == 4


def test_utterances_jsonl(cuts_run: tuple[Path, dict], eval_data) -> None:
    out, _ = cuts_run
    records = _hypotheses(out)
    assert [r["reference"] for r in records] == list(eval_data.texts.values())  # input order
    for r in records:
        chunks = -(-r["encoder_frames"] // 8)
        assert r["choices"]["utterance"]["fixed@2"] == 3
        assert r["choices"]["chunk"]["fixed@0"] == [1] * chunks
        assert all(layer in (1, 2, 3, 4) for layer in r["choices"]["chunk"]["entropy@0.1"])
        assert r["duration_seconds"] > 1.0


def test_markdown_and_plot(cuts_run: tuple[Path, dict]) -> None:
    out, results = cuts_run
    md = (out / "results.md").read_text()
    assert "## Per exit" in md and "## Exit policies: beam decoding, exit chosen per chunk" in md
    assert f"| greedy | 1 | {results['per_exit'][0]['wer']:.2f} |" in md
    png = (out / "wer_vs_compute.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    import matplotlib.image

    image = matplotlib.image.imread(str(out / "wer_vs_compute.png"))
    assert image.shape[0] > 500 and image.shape[1] > 1000 and image.std() > 0.01  # drawn, not blank


@pytest.mark.parametrize("form", ["kaldi", "tsv"])
def test_transcripts_give_the_cut_results(form: str, cuts_run: tuple[Path, dict], eval_model: Path, eval_data,
                                          tmp_path: Path) -> None:
    transcripts = eval_data.kaldi_text if form == "kaldi" else eval_data.tsv
    rc, results = _evaluate(eval_model, tmp_path, "--audio-dir", str(eval_data.audio_dir), "--transcripts",
                            str(transcripts), "--decoding", "both", "--chunk-frames", "8", "--no-plot")
    assert rc == 0 and results["num_evaluated"] == 4
    assert [r["id"] for r in _hypotheses(tmp_path)] == list(eval_data.texts)
    assert [(r["wer"], r["ins"], r["del"], r["sub"]) for r in results["per_exit"]] == \
        [(r["wer"], r["ins"], r["del"], r["sub"]) for r in cuts_run[1]["per_exit"]]
    assert [r["hypotheses"] for r in _hypotheses(tmp_path)] == [r["hypotheses"] for r in _hypotheses(cuts_run[0])]
    assert not (tmp_path / "wer_vs_compute.png").exists()


def test_single_files_any_rate_channels_and_format(odd_audio: dict[str, Path], eval_model: Path,
                                                   tmp_path: Path) -> None:
    files = [odd_audio["stereo44k"], odd_audio["mono16k"], odd_audio["flac"]]
    rc, results = _evaluate(eval_model, tmp_path, *map(str, files))
    assert rc == 0 and results["num_evaluated"] == 3 and results["failed"] == []
    assert results["num_with_reference"] == 0 and all(r["wer"] is None for r in results["per_exit"])
    stereo, wav, flac = _hypotheses(tmp_path)
    assert [r["source"] for r in (stereo, wav, flac)] == [str(f) for f in files]
    assert flac["hypotheses"] == wav["hypotheses"]  # lossless: the same samples
    assert stereo["duration_seconds"] == pytest.approx(wav["duration_seconds"], abs=0.01)
    assert stereo["encoder_frames"] == wav["encoder_frames"]
    assert all(h for h in stereo["hypotheses"]["greedy"])
    assert (tmp_path / "wer_vs_compute.png").read_bytes().startswith(PNG_MAGIC)


def test_bad_files_are_reported_and_the_rest_evaluated(odd_audio: dict[str, Path], eval_model: Path, eval_data,
                                                       tmp_path: Path) -> None:
    audio_dir = tmp_path / "audio"
    shutil.copytree(eval_data.audio_dir, audio_dir)
    shutil.copy(odd_audio["corrupt"], audio_dir / "utt_corrupt.wav")
    shutil.copy(odd_audio["empty"], audio_dir / "utt_empty.wav")
    shutil.copy(odd_audio["no_samples"], audio_dir / "utt_silent.wav")
    text = tmp_path / "text"
    text.write_text(eval_data.kaldi_text.read_text() + "utt_corrupt some words\nutt_empty more words\n"
                    "utt_silent no samples\nutt_missing where is it\n")
    rc, results = _evaluate(eval_model, tmp_path / "out", "--audio-dir", str(audio_dir), "--transcripts",
                            str(text), "--no-plot")
    assert rc == 0
    assert results["num_evaluated"] == 4 and results["num_failed"] == 4 and results["num_utterances"] == 8
    failed = {f["id"]: f for f in results["failed"]}
    assert list(failed) == ["utt_corrupt", "utt_empty", "utt_silent", "utt_missing"]
    assert failed["utt_corrupt"]["source"].endswith("utt_corrupt.wav")
    assert "cannot decode" in failed["utt_corrupt"]["error"]
    assert "empty (0 bytes)" in failed["utt_empty"]["error"] and "utt_empty.wav" in failed["utt_empty"]["error"]
    assert "no audio samples" in failed["utt_silent"]["error"]
    assert "no audio file for 'utt_missing'" in failed["utt_missing"]["error"]
    assert results["per_exit"][0]["num_words"] == 34  # only the good utterances are scored
    assert "## Failed (4)" in (tmp_path / "out" / "results.md").read_text()


def test_nothing_evaluable_exits_non_zero(odd_audio: dict[str, Path], eval_model: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nowhere.wav"
    rc, results = _evaluate(eval_model, tmp_path / "out", str(odd_audio["corrupt"]), str(odd_audio["empty"]),
                            str(missing))
    assert rc == 1
    assert results["num_evaluated"] == 0
    assert [f["source"] for f in results["failed"]] == [str(odd_audio["corrupt"]), str(odd_audio["empty"]),
                                                        str(missing)]
    assert "no such file" in results["failed"][2]["error"]
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("case,message", [
    ("manifest", "cut manifest"),
    ("model", "does not exist"),
    ("threshold", "fixed thresholds are exit indices"),
    ("left_context", "left_context_chunks needs attention 'chunk'"),
    ("criterion", "unknown"),
])
def test_clear_one_line_errors(case: str, message: str, eval_model: Path, eval_data, tmp_path: Path,
                               capsys: pytest.CaptureFixture) -> None:
    args = {"manifest": [str(tmp_path / "missing.jsonl.gz")],
            "model": [str(eval_data.cuts)],
            "threshold": [str(eval_data.cuts), "--thresholds", "fixed=0,7"],
            "left_context": [str(eval_data.cuts), "--left-context-chunks", "2"],
            "criterion": [str(eval_data.cuts), "--criteria", "entropy,magic"]}[case]
    model = tmp_path / "no_model.pt" if case == "model" else eval_model
    rc, results = _evaluate(model, tmp_path / "out", *args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and results is None
    assert err.startswith("asr-ee evaluate:") and message in err and len(err.splitlines()) == 1


def test_criteria_and_threshold_options(eval_model: Path, eval_data, tmp_path: Path) -> None:
    rc, results = _evaluate(eval_model, tmp_path, str(eval_data.cuts), "--criteria", "entropy,oracle",
                            "--thresholds", "entropy=0.5,1.0", "--no-plot", "--attention", "chunk",
                            "--chunk-frames", "4", "--left-context-chunks", "1")
    assert rc == 0
    assert [(r["criterion"], r["threshold"]) for r in results["policies"] if r["granularity"] == "utterance"] == \
           [("entropy", 0.5), ("entropy", 1.0), ("oracle", None)]
    assert results["settings"]["attention"] == "chunk" and results["settings"]["left_context_chunks"] == 1
    assert results["settings"]["context_frames"] <= 8  # each frame sees at most two 4-frame chunks


def test_speed_benchmark_reports_throughput(eval_model: Path, eval_data, capsys: pytest.CaptureFixture) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "evaluate_speed.py"
    spec = importlib.util.spec_from_file_location("evaluate_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(eval_data.cuts), "--model", str(eval_model), "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["utterances"] == 4 and report["audio_seconds"] > 5
    assert report["utterances_per_second"] > 0 and 0 < report["real_time_factor"] < 1
    assert list(report["encoder_rtf_to_exit"]) == ["1", "2", "3", "4"]


def test_output_folder_is_checked_before_the_work(eval_data, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from asr_ee.evaluation.report import OutputDir

    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    missing_model = tmp_path / "no_model.pt"  # would fail later: the folder's error must come first
    rc, _ = _evaluate(missing_model, a_file, str(eval_data.cuts))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "cannot write to" in err and "is a file" in err and len(err.splitlines()) == 1
    with OutputDir(tmp_path / "busy"):  # another run holds the folder
        rc, results = _evaluate(missing_model, tmp_path / "busy", str(eval_data.cuts))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and results is None and "another run is writing into" in err
    with OutputDir(tmp_path / "busy"):  # released when the first run ends
        pass


def test_a_rerun_replaces_the_whole_set(eval_model: Path, eval_data, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc, first = _evaluate(eval_model, out, str(eval_data.cuts), "--limit", "2", "--criteria", "entropy")
    assert rc == 0 and (out / "wer_vs_compute.png").is_file()
    rc, second = _evaluate(eval_model, out, str(eval_data.cuts), "--limit", "1", "--criteria", "entropy",
                           "--no-plot")
    assert rc == 0 and second["num_utterances"] == 1 and len(_hypotheses(out)) == 1
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md", "utterances.jsonl"]


def test_every_plotted_criterion_gets_its_line() -> None:
    """The plot draws one line per criterion that has rows, the learned gate included (a fixed
    palette of four colours once dropped the fifth criterion, the gate, without a word)."""
    from asr_ee.evaluation.report import _CRITERIA_PLOTTED, _LABELS, _panel

    class Axes:
        def __init__(self) -> None:
            self.labels: list[str] = []
            self.colors: list[str] = []

        def plot(self, *args, label: str | None = None, color: str | None = None, **kwargs) -> None:
            if label:
                self.labels.append(label)
                self.colors.append(color or "")

        def __getattr__(self, name: str):
            return lambda *args, **kwargs: None

    policies = [{"decoding": "lm", "granularity": "chunk", "criterion": kind, "threshold": t, "wer": 10.0 + i + t,
                 "compute_fraction": 0.5 + 0.05 * i + 0.01 * t} for i, kind in enumerate(_CRITERIA_PLOTTED)
                for t in (0.1, 0.2)]
    summary = {"per_exit": [{"decoding": "lm", "wer": 9.0, "compute_fraction": 1.0, "exit_layer": 12}],
               "policies": policies, "settings": {"chunk_frames": 8}}
    ax = Axes()
    _panel(ax, summary, "lm", "chunk")
    assert "learned gate" in ax.labels
    assert set(ax.labels) == {"per exit (= fixed exit)"} | {_LABELS[k] for k in _CRITERIA_PLOTTED}
    criterion_colors = ax.colors[1:]
    assert len(set(criterion_colors)) == len(criterion_colors) == len(_CRITERIA_PLOTTED)
