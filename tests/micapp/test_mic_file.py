"""The microphone app end to end on synthesized speech fed with ``--input-file``: the overfit
model's utterances must come out exactly as the library's streaming path makes them (which begin as
their memorized transcripts), through ``asr-ee mic``, ``python apps/mic.py`` and the app's ``run``
with an injected clock, sleep and CPU load."""

from __future__ import annotations

import io
import queue
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from asr_ee.micapp.sources import FileSource, InputEnded
from asr_ee.audio import load_audio
from asr_ee.cli import main as cli_main
from asr_ee.exits.criteria import ExitCriterion
from asr_ee.features import DEFAULT_TAIL_SILENCE_MS
from mic_fakes import EXACT, FakeClock, begins_like, library_result, mic_args

REPO = Path(__file__).resolve().parents[2]
CHUNK_LINE = re.compile(r"^\[ *(\d+\.\d+)s\] exit (\d)/4  cap (\d)  cpu +(\d+)%(?:  ~ (.*))?$")


def _chunk_lines(out: str) -> list[re.Match]:
    return [m for m in map(CHUNK_LINE.match, out.splitlines()) if m]


def _run(app, *argv: str, clock: FakeClock | None = None, cpu_load: float = 0.25) -> tuple[int, str, str]:
    out, err, clock = io.StringIO(), io.StringIO(), clock or FakeClock()
    env = app.Environment(clock=clock, sleep=clock.sleep, cpu_load=lambda: cpu_load, out=out, err=err)
    status = app.run(mic_args(*argv), env)
    return status, out.getvalue(), err.getvalue()


def _expected(overfit_model, index: int, **settings) -> str:
    """The library's text for utterance ``index`` (which must begin as its memorized transcript)."""
    memorized = overfit_model.texts[index]
    text = library_result(overfit_model.path, load_audio(overfit_model.wavs[index]), **settings).text
    assert begins_like(text, memorized)
    return text


def test_every_utterance_comes_out_exactly_with_the_default_settings(app, overfit_model):
    """Default settings but for the load controller (see ``mic_fakes.EXACT``)."""
    for index, wav in enumerate(overfit_model.wavs):
        text = _expected(overfit_model, index)
        clock = FakeClock()
        start = clock.now
        status, out, err = _run(app, "--input-file", str(wav), "--model", str(overfit_model.path), "--speed", "4",
                                *EXACT, clock=clock)
        assert status == 0, err
        lines = out.splitlines()
        assert lines[-2] == f"transcript: {text}"
        assert " ".join(line.split(": ", 1)[1] for line in lines if line.startswith("segment ")) == text
        chunks = _chunk_lines(out)
        seconds = sf.info(str(wav)).duration
        ends = [float(c.group(1)) for c in chunks]  # 8 encoder frames (0.32 s) a chunk, the last one shorter
        assert ends[:-1] == pytest.approx([0.32 * (k + 1) for k in range(len(ends) - 1)])
        assert ends[-2] < ends[-1] <= seconds + DEFAULT_TAIL_SILENCE_MS / 1000 + 0.04  # and the silence appended
        assert {c.group(4) for c in chunks} == {"25"}  # the injected CPU load, shown per chunk
        assert all(int(c.group(2)) <= int(c.group(3)) for c in chunks)  # never past the cap
        partials = [c.group(5) for c in chunks if c.group(5)]
        assert partials[-1] == text and all(text.startswith(p) for p in partials)
        assert re.search(rf"^summary: audio {seconds:.2f} s \| {len(chunks)} chunks \| average exit layer "
                         r"\d\.\d\d of 4 \| compute saved \d+% \| real-time factor \d+\.\d{3} \| overflows 0$", lines[-1])
        assert clock.now - start == pytest.approx(seconds / 4)  # paced at 4x through `sleep`


def test_without_a_criterion_every_chunk_runs_to_the_last_layer(app, overfit_model):
    status, out, _ = _run(app, "--input-file", str(overfit_model.wavs[1]), "--model", str(overfit_model.path),
                          "--criterion", "none", "--no-controller", "--speed", "100")
    assert status == 0
    assert {(c.group(2), c.group(3)) for c in _chunk_lines(out)} == {("4", "4")}
    expected = _expected(overfit_model, 1, criterion=None)
    assert out.splitlines()[-2] == f"transcript: {expected}"
    assert "average exit layer 4.00 of 4 | compute saved 0% |" in out.splitlines()[-1]


def test_early_exits_save_compute(app, overfit_model):
    status, out, _ = _run(app, "--input-file", str(overfit_model.wavs[2]), "--model", str(overfit_model.path),
                          "--criterion", "fixed", "--threshold", "2", "--no-controller", "--speed", "100")
    expected = _expected(overfit_model, 2, criterion=ExitCriterion("fixed", 0.0))  # exit index 0: layer 2
    assert status == 0 and out.splitlines()[-2] == f"transcript: {expected}"
    assert {c.group(2) for c in _chunk_lines(out)} == {"2"}
    saved = int(re.search(r"compute saved (\d+)%", out).group(1))
    assert 20 <= saved < 100


def test_asr_ee_mic_command(overfit_model, capsys):
    wav = overfit_model.wavs[3]
    text = _expected(overfit_model, 3)
    assert cli_main(["mic", "--input-file", str(wav), "--model", str(overfit_model.path), "--speed", "50", *EXACT]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"asr-ee mic: transcribing {wav} at 50x real time; model model.pt")
    assert out.splitlines()[-2] == f"transcript: {text}"


def test_python_apps_mic_py(overfit_model):
    wav, text = overfit_model.wavs[0], _expected(overfit_model, 0)
    proc = subprocess.run([sys.executable, str(REPO / "apps" / "mic.py"), "--input-file", str(wav), "--model",
                           str(overfit_model.path), "--speed", "50", "--no-controller"],
                          capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2] == f"transcript: {text}"
    assert "Traceback" not in proc.stderr


def test_bad_inputs_get_a_message_not_a_traceback(app, overfit_model, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....not audio")
    model = str(overfit_model.path)
    for argv, message in [
        (["--input-file", str(tmp_path / "missing.wav"), "--model", model], "missing.wav: no such file"),
        (["--input-file", str(broken), "--model", model], "broken.wav"),
        (["--input-file", str(overfit_model.wavs[0]), "--model", str(tmp_path / "none.pt")], "does not exist"),
        (["--input-file", str(overfit_model.wavs[0]), "--model", model, "--speed", "0"], "--speed must be positive"),
        (["--input-file", str(overfit_model.wavs[0]), "--model", model, "--chunk-frames", "0"], "chunk_frames"),
        (["--input-file", str(overfit_model.wavs[0]), "--device", "1"], "exclude each other"),
        (["--input-file", str(overfit_model.wavs[0]), "--model", model, "--save", str(broken / "dir")],
         "cannot write there"),
    ]:
        status, out, err = _run(app, *argv)
        assert status == 2 and message in err and "Traceback" not in err, (argv, err)


def test_file_source_queues_each_block_when_its_audio_has_been_spoken(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, [0.1] * 5000, 16000)  # 3 blocks of 1600 samples and one of 200
    clock = FakeClock()
    start = clock.now
    source = FileSource(path, speed=2.0, clock=clock, sleep=clock.sleep)
    arrivals: list[tuple[float, int]] = []

    class Sink(queue.Queue):
        def put(self, item, block=True, timeout=None):
            arrivals.append((clock.now - start, 0 if isinstance(item, InputEnded) else item.size))
            super().put(item, block, timeout)

    sink = Sink()
    source.start(sink)
    while not isinstance(sink.get(timeout=30), InputEnded):
        pass
    source.stop()
    assert source.fed_all.is_set()
    assert arrivals == [(pytest.approx(0.05), 1600), (pytest.approx(0.1), 1600), (pytest.approx(0.15), 1600),
                        (pytest.approx(0.15625), 200), (pytest.approx(0.15625), 0)]  # at 2x real time


def test_a_crash_in_decoding_is_reported_and_the_audio_still_saved(app, overfit_model, tmp_path, monkeypatch,
                                                                   file_sources):
    from asr_ee.streaming import Recognizer

    decode, calls = Recognizer.decode, []

    def failing_decode(self, stream):
        calls.append(1)
        if len(calls) == 3:
            assert file_sources[0].fed_all.wait(60)  # the whole file has arrived
            raise RuntimeError("simulated bug")
        decode(self, stream)

    monkeypatch.setattr(Recognizer, "decode", failing_decode)
    wav = overfit_model.wavs[1]
    status, out, err = _run(app, "--input-file", str(wav), "--model", str(overfit_model.path), "--save",
                            str(tmp_path), "--speed", "100")
    assert status == 1 and len(calls) == 3
    assert "asr-ee mic: decoding failed: RuntimeError: simulated bug\nTraceback" in err
    assert len(_chunk_lines(out)) == 2 and out.splitlines()[-2].startswith("transcript: ")
    [saved] = tmp_path.glob("mic-*.wav")
    assert sf.info(str(saved)).frames == sf.info(str(wav)).frames  # everything that arrived was kept
