"""``asr-ee transcribe`` end to end: an exported tiny model, a few wav files, one bad file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import soundfile as sf

from asr_ee.audio import load_audio
from asr_ee.checkpoint import export_model
from asr_ee.cli import main
from asr_ee.config import to_dict
from asr_ee.exits.criteria import ExitCriterion
from asr_ee.features import DEFAULT_TAIL_SILENCE_MS
from asr_ee.models import SkipPolicy
from asr_ee.pretrained import load_pretrained
from asr_ee.streaming import Recognizer, StreamingConfig
from asr_ee.streaming.options import add_recognizer_arguments, recognizer_from_args
from asr_ee.streaming.simulate import run_stream
from streaming_helpers import make_pretrained, synthetic_speech

TAIL_S = DEFAULT_TAIL_SILENCE_MS / 1000  # appended at the end of every input
CHUNK_KEYS = {"exit_layer", "criterion_value", "cap", "compute_ms", "backlog_ms", "cpu_load"}


@pytest.fixture
def model_path(tokenizer_path: Path, tmp_path: Path) -> Path:
    pretrained = make_pretrained(tokenizer_path)
    path = tmp_path / "tiny.pt"
    export_model({"encoder_config": to_dict(pretrained.encoder.cfg), "model": pretrained.encoder.state_dict()},
                 tokenizer_path, path, half=False)
    return path


@pytest.fixture
def wav_files(tmp_path: Path) -> list[Path]:
    paths = []
    for i, (seconds, rate) in enumerate([(2.3, 16000), (3.1, 8000)]):
        path = tmp_path / f"utt{i}.wav"
        sf.write(path, synthetic_speech(seconds, sample_rate=rate, seed=i).numpy(), rate)
        paths.append(path)
    return paths


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_transcribe_json_matches_the_library_and_reports_a_bad_file(model_path, wav_files, tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....this is not audio")
    argv = ["transcribe", *map(str, wav_files), str(bad), "--model", str(model_path), "--json",
            "--chunk-frames", "4", "--criterion", "entropy", "--threshold", "0.963", "--skip-policy", "recompute",
            "--no-controller"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    records = {r["id"]: r for r in _lines(captured.out)}
    assert set(records) == {"utt0", "utt1", "broken"}
    assert "error" in records["broken"] and "broken.wav" in captured.err
    config = StreamingConfig(chunk_frames=4, criterion=ExitCriterion("entropy", 0.963),
                             skip_policy=SkipPolicy.RECOMPUTE, controller=None)
    recognizer = Recognizer(load_pretrained(model_path), config)
    for path in wav_files:
        record, expected = records[path.stem], run_stream(recognizer, load_audio(path))
        assert record["text"] == expected.text and record["text"]
        assert [c["exit_layer"] for c in record["chunks"]] == [c.exit_layer for c in expected.chunks]
        assert all(set(c) == CHUNK_KEYS and c["exit_layer"] <= c["cap"] for c in record["chunks"])
    duration = sf.info(str(wav_files[1])).duration
    assert len(records["utt1"]["chunks"]) == pytest.approx((duration + TAIL_S) / 0.16, abs=1)  # and the tail


def test_transcribe_plain_text_with_cuts_prints_wer(model_path, wav_files, tmp_path, capsys):
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recordings = RecordingSet.from_recordings(Recording.from_file(p) for p in wav_files)
    supervisions = SupervisionSet.from_segments(
        SupervisionSegment(id=r.id, recording_id=r.id, start=0, duration=r.duration, text="hello world")
        for r in recordings)
    cuts_path = tmp_path / "cuts.jsonl.gz"
    CutSet.from_manifests(recordings=recordings, supervisions=supervisions).to_file(cuts_path)
    assert main(["transcribe", "--cuts", str(cuts_path), "--model", str(model_path)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and all("\t" in line for line in captured.out.splitlines())
    assert "WER" in captured.err and "4 words" in captured.err


def test_transcribe_fails_only_when_nothing_could_be_transcribed(model_path, tmp_path, capsys):
    missing = tmp_path / "missing.wav"
    assert main(["transcribe", str(missing), "--model", str(model_path)]) == 1
    assert "missing.wav" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--criterion", "fixed"], "needs --threshold"),
    (["--chunk-frames", "0"], "chunk_frames"),
    (["--model", "/nonexistent/model.pt"], "does not exist"),
    (["--max-exit-layer", "7"], "max_exit_layer 7 is not an exit of this model (exits at layers 1, 2, 3, 4)"),
])
def test_transcribe_reports_bad_options(model_path, wav_files, capsys, argv, message):
    base = ["transcribe", str(wav_files[0])]
    if "--model" not in argv:
        base += ["--model", str(model_path)]
    assert main(base + argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err


def test_transcribe_realtime_paces_the_audio(model_path, tmp_path, capsys):
    import time

    path = tmp_path / "short.wav"
    sf.write(path, synthetic_speech(0.8, seed=5).numpy(), 16000)
    start = time.perf_counter()
    assert main(["transcribe", str(path), "--model", str(model_path), "--realtime", "--json",
                 "--no-controller"]) == 0
    assert time.perf_counter() - start >= 0.8
    fast = _lines(capsys.readouterr().out)[0]
    assert main(["transcribe", str(path), "--model", str(model_path), "--json", "--no-controller"]) == 0
    assert _lines(capsys.readouterr().out)[0]["text"] == fast["text"]


def test_transcribe_audio_dir_with_transcripts_and_a_yaml_config(model_path, wav_files, tmp_path, capsys):
    transcripts = tmp_path / "text"
    transcripts.write_text("utt0 hello there\nutt1 general kenobi\nutt9 nobody recorded this\n")
    config = tmp_path / "streaming.yaml"
    config.write_text("chunk_frames: 6\nleft_context_chunks: 2\ncriterion: null\ncontroller: null\n")
    argv = ["transcribe", "--audio-dir", str(tmp_path), "--transcripts", str(transcripts), "--model",
            str(model_path), "--config", str(config), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    records = {r["id"]: r for r in _lines(captured.out)}
    assert records["utt0"]["reference"] == "hello there" and "utt9" in records["utt9"]["error"]
    assert {c["exit_layer"] for c in records["utt0"]["chunks"]} == {4}  # no criterion: full depth
    assert len(records["utt0"]["chunks"]) == pytest.approx((2.3 + TAIL_S) / 0.24, abs=1)  # 6-frame chunks
    assert "WER" in captured.err and "1 of 3" in captured.err
    config.write_text("chunk_frames: 6\nchunk_size: 4\n")
    assert main(argv) == 2
    assert "chunk_size" in capsys.readouterr().err


def test_show_exits_prints_each_chunks_exit_layer(model_path, wav_files, capsys):
    argv = ["transcribe", str(wav_files[0]), "--model", str(model_path), "--chunk-frames", "4", "--criterion",
            "fixed", "--threshold", "2", "--no-controller", "--show-exits"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("utt0\t")
    exits_line = lines[1]
    assert exits_line.startswith("  exits per chunk: ")
    layers = exits_line.split(": ", 1)[1].split("  (")[0].split()
    expected_layer = load_pretrained(model_path).encoder.cfg.exit_layers[1]
    chunks = (int((2.3 + TAIL_S) * 100) - 3) // 16  # fbank frames (the tail too) -> 4-frame chunks of 40 ms
    assert layers == [str(expected_layer)] * len(layers) and abs(len(layers) - chunks) <= 1


def test_max_exit_layer_caps_every_chunk(model_path, wav_files, capsys):
    argv = ["transcribe", str(wav_files[0]), "--model", str(model_path), "--criterion", "none", "--no-controller",
            "--max-exit-layer", "2", "--json"]
    assert main(argv) == 0
    (record,) = _lines(capsys.readouterr().out)
    assert {c["exit_layer"] for c in record["chunks"]} == {2} and {c["cap"] for c in record["chunks"]} == {2}


@pytest.mark.parametrize("extra, config_text, expected", [
    ([], None, "model"),                              # the shipped model's own ceiling (from its file)
    (["--max-exit-layer", "12"], None, 12),           # told otherwise on the command line
    ([], "max_exit_layer: null\n", None),             # or in the config file
    ([], "chunk_frames: 8\n", "model"),
])
def test_the_shipped_model_streams_up_to_its_ceiling_unless_told_otherwise(extra, config_text, expected, tmp_path):
    from asr_ee.streaming.factory import model_file_defaults

    if expected == "model":
        expected = model_file_defaults()[1].get("max_exit_layer")
    parser = argparse.ArgumentParser()
    add_recognizer_arguments(parser)
    if config_text is not None:
        (tmp_path / "s.yaml").write_text(config_text)
        extra = extra + ["--config", str(tmp_path / "s.yaml")]
    recognizer = recognizer_from_args(parser.parse_args(extra + ["--no-lm", "--no-controller"]))
    layers = list(recognizer.encoder.cfg.exit_layers)
    assert recognizer.config.max_exit_layer == expected
    assert recognizer.top == (len(layers) - 1 if expected is None else layers.index(expected))


def test_other_models_stream_to_their_last_exit(model_path):
    parser = argparse.ArgumentParser()
    add_recognizer_arguments(parser)
    recognizer = recognizer_from_args(parser.parse_args(["--model", str(model_path)]))
    assert recognizer.config.max_exit_layer is None and recognizer.top == 3
    assert recognizer.config.hold_chunks == 0
    held = recognizer_from_args(parser.parse_args(["--model", str(model_path), "--hold-chunks", "2"]))
    assert held.config.hold_chunks == 2


def test_inputs_with_one_stem_get_distinct_ids_and_a_folder_is_its_audio(model_path, tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    speech = synthetic_speech(1.5, seed=7).numpy()
    sf.write(folder / "clip.wav", speech, 16000)
    sf.write(folder / "clip.flac", speech, 16000)
    (folder / "notes.txt").write_text("not audio")
    assert main(["transcribe", str(folder), "--model", str(model_path), "--json"]) == 0
    records = _lines(capsys.readouterr().out)
    assert [r["id"] for r in records] == ["clip.flac", "clip.wav"]
    assert records[0]["text"] == records[1]["text"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["transcribe", str(empty), "--model", str(model_path)]) == 2
    assert "is a folder with no audio files" in capsys.readouterr().err


def test_dash_reads_audio_from_stdin(model_path, wav_files, monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(wav_files[0].read_bytes())))
    assert main(["transcribe", "-", "--model", str(model_path), "--no-controller"]) == 0
    from_stdin = capsys.readouterr().out
    assert main(["transcribe", str(wav_files[0]), "--model", str(model_path), "--no-controller"]) == 0
    assert from_stdin == "stdin\t" + capsys.readouterr().out.split("\t", 1)[1]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["transcribe", "-", "--model", str(model_path)]) == 1
    assert "stdin: no audio" in capsys.readouterr().err


def test_subtitles_and_json_files_in_an_output_dir(model_path, wav_files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["transcribe", *map(str, wav_files), "--model", str(model_path), "--no-controller"]
    assert main(argv + ["--format", "srt"]) == 2
    assert "needs --output-dir" in capsys.readouterr().err
    assert main(argv + ["--format", "srt", "--output-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["utt0.srt", "utt1.srt"]
    srt = (out / "utt0.srt").read_text()
    assert srt == "" or (srt.startswith("1\n00:00:0") and " --> " in srt)
    assert main(argv + ["--format", "json", "--output-dir", str(out)]) == 0
    record = json.loads((out / "utt1.json").read_text())
    assert record["id"] == "utt1" and {"text", "segments", "words", "chunks"} <= set(record)
    assert all(0 <= w["start_s"] <= w["end_s"] <= 3.1 + 1e-3 for w in record["words"])
    assert main(argv + ["--json", "--format", "vtt"]) == 2
    assert "contradict" in capsys.readouterr().err
