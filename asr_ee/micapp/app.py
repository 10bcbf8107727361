"""The microphone app: options -> source, recognizer, display -> session -> transcript, summary and
(with ``--save``) the audio and transcript on disk. ``asr-ee mic`` (and ``python apps/mic.py`` in a
clone) end up in :func:`run`.

Threads: PortAudio's callback (or the file feeder) queues audio; the decoding thread
(:class:`~asr_ee.micapp.session.Session`) recognizes and prints; the main thread only waits, and
turns Ctrl-C (a SIGINT handler that sets a stop event, so no KeyboardInterrupt lands mid-way) or
``stop_event`` into stopping the source, after which the decoding thread transcribes what was
captured and the final transcript is printed. A second Ctrl-C gives up (exit status 130).

Exit status: 0 when the session ended normally or was stopped, 1 when the device failed mid-session
or decoding crashed (what was captured is still transcribed and saved), 2 when it could not start.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, TextIO

from asr_ee.micapp.display import PlainDisplay, make_display
from asr_ee.micapp.session import Session, WavRecorder
from asr_ee.micapp.sources import (AudioSource, DeviceError, FileSource, MicrophoneSource, format_device_list,
                                 import_sounddevice, parse_device)

__all__ = ["run", "main", "Environment", "Clock", "TRACE_CHUNKS"]

Clock = Callable[[], float]
TRACE_CHUNKS = 64  # chunk records the stream keeps; the session's sums cover every chunk
_PROG = "asr-ee mic"


@dataclasses.dataclass
class Environment:
    """What :func:`run` takes from the world, injectable for tests."""

    sounddevice: ModuleType | None = None             # None: import the real one when needed
    clock: Clock = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    cpu_load: Callable[[], float] | None = None       # None: psutil (when the controller is on)
    out: TextIO | None = None
    err: TextIO | None = None
    stop_event: threading.Event | None = None          # set it to stop like Ctrl-C
    stall_timeout_s: float = 3.0
    width: int | None = None                           # terminal width (None: ask the terminal)


def _fail(env: Environment, message: str) -> int:
    print(f"{_PROG}: {message}", file=env.err, flush=True)
    return 2


def _open_source(args: argparse.Namespace, env: Environment) -> AudioSource:
    if args.input_file:
        if args.device is not None:
            raise ValueError("--device and --input-file exclude each other")
        return FileSource(args.input_file, speed=args.speed, clock=env.clock, sleep=env.sleep)
    sd = env.sounddevice or import_sounddevice()
    return MicrophoneSource(sd, parse_device(args.device), clock=env.clock)


def _load_recognizer(args: argparse.Namespace, env: Environment):
    """The recognizer ``asr-ee transcribe`` would build from these options (the library's factory),
    keeping the last ``TRACE_CHUNKS`` chunk records unless the options say otherwise."""
    from asr_ee.streaming.options import recognizer_from_args

    return recognizer_from_args(args, extra_settings={"max_trace_chunks": TRACE_CHUNKS}, clock=env.clock,
                                cpu_load=env.cpu_load)


@contextlib.contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """While inside, Ctrl-C (SIGINT) sets ``stop`` instead of raising KeyboardInterrupt anywhere in
    the main thread; a second Ctrl-C raises it (to give up on finishing). Outside the main thread
    (the app embedded somewhere) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait(session: Session, stop: threading.Event, env: Environment) -> bool:
    """Start the session and wait for its decoding thread; once ``stop`` is set (Ctrl-C), stop the
    source and keep waiting while what was captured is transcribed. Returns whether it was stopped."""
    thread = session.start()
    stopped = False
    while thread.is_alive():
        thread.join(timeout=0.1)
        if stop.is_set() and not stopped:
            stopped = True
            print(f"\n{_PROG}: stopping; transcribing what was captured", file=env.err, flush=True)
            session.source.stop()
    return stopped


def _save(directory: Path, stem: str, session: Session, args: argparse.Namespace, stopped: bool) -> Path:
    """``<stem>.txt`` (one finished segment a line) and ``<stem>.json`` (segments with times, summary)."""
    text_path = directory / f"{stem}.txt"
    text_path.write_text("".join(f"{s.text}\n" for s in session.segments), encoding="utf-8")
    record = {
        "source": args.input_file or session.source.description, "transcript": session.transcript,
        "segments": [{"text": s.text, "start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3)}
                     for s in session.segments],
        "summary": dataclasses.asdict(session.summary()), "stopped_by_user": stopped, "error": session.error,
        "model": str(session.recognizer.pretrained.path), "config": session.recognizer.config.to_dict(),
    }
    (directory / f"{stem}.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return text_path


def _list_devices(env: Environment) -> int:
    try:
        lines = format_device_list(env.sounddevice or import_sounddevice())
    except DeviceError as e:
        return _fail(env, str(e))
    print("\n".join(lines), file=env.out, flush=True)
    return 0


def _start(args: argparse.Namespace, env: Environment) -> tuple[Session, PlainDisplay, Path | None] | int:
    """Source, recognizer, display and session ready to start, or an exit status."""
    from asr_ee.audio import AudioError
    from asr_ee.config import CheckpointError, ConfigError

    source: AudioSource | None = None
    try:  # the source first: a missing device is the likelier problem, and says so at once
        source = _open_source(args, env)
        recognizer = _load_recognizer(args, env)
    except (DeviceError, AudioError, ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
        if source is not None:
            source.stop(abort=True)
        return _fail(env, str(e))
    save_stem = _session_stem(Path(args.save), datetime.now()) if args.save else None
    try:
        recorder = None if save_stem is None else WavRecorder(save_stem.with_suffix(".wav"), source.sample_rate)
    except (OSError, RuntimeError) as e:  # soundfile's errors are RuntimeErrors; permissions and the like OSErrors
        source.stop(abort=True)
        return _fail(env, f"--save {args.save}: cannot write there ({e})")
    recognizer.warm_up()  # the first chunk's one-time costs would read as a backlog to the load controller
    num_layers = recognizer.encoder.cfg.num_layers
    display = make_display(num_layers, env.out, env.err, plain=args.plain, width=env.width or _terminal_width())
    session = Session(recognizer, source, display, recorder=recorder, clock=env.clock,
                      stall_timeout_s=env.stall_timeout_s)
    exits = ", ".join(map(str, recognizer.encoder.cfg.exit_layers))
    verb = "transcribing" if not source.live else "listening on"
    path = recognizer.pretrained.path  # an exported folder's is its model.json: name the folder
    model = f"{path.parent.parent.name}/{path.parent.name} (onnxruntime)" if path.name == "model.json" else path.name
    display.header(f"{_PROG}: {verb} {source.description}; model {model} "
                   f"(exits at layers {exits} of {num_layers}); Ctrl-C to stop")
    return session, display, save_stem


def _session_stem(directory: Path, now: datetime) -> Path:
    """``DIR/mic-YYYYmmdd-HHMMSS`` (with ``-2``, ``-3``... when a session of that second exists)."""
    stem, n = directory / f"mic-{now:%Y%m%d-%H%M%S}", 1
    while any(stem.with_suffix(ext).exists() for ext in (".wav", ".txt", ".json")):
        n += 1
        stem = directory / f"mic-{now:%Y%m%d-%H%M%S}-{n}"
    return stem


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def run(args: argparse.Namespace, env: Environment | None = None) -> int:
    """Run the app with parsed options; see the module docstring for the exit status."""
    env = dataclasses.replace(env or Environment())
    env.out, env.err = env.out or sys.stdout, env.err or sys.stderr
    if args.list_devices:
        return _list_devices(env)
    started = _start(args, env)
    if isinstance(started, int):
        return started
    session, display, save_stem = started
    stop = env.stop_event or threading.Event()
    with _ctrl_c_sets(stop):
        stopped = _wait(session, stop, env)
    display.finish(session.transcript, session.summary())
    status = 0
    if session.crash is not None:  # a bug: the message, and the traceback to report it with
        trace = "".join(traceback.format_exception(session.crash)).rstrip()
        display.notice(f"{_PROG}: decoding failed: {type(session.crash).__name__}: {session.crash}\n{trace}")
        status = 1
    if session.error is not None:
        display.notice(f"{_PROG}: {session.error}; the audio captured before that was transcribed"
                       + (" and saved" if save_stem is not None else ""))
        status = 1
    if save_stem is not None:
        try:
            text_path = _save(save_stem.parent, save_stem.name, session, args, stopped)
        except OSError as e:
            display.notice(f"{_PROG}: could not write the transcript: {e}")
            return 1
        display.notice(f"{_PROG}: saved {save_stem.name}.wav, {text_path.name} and {save_stem.name}.json "
                       f"in {save_stem.parent}")
    return status


def main(argv: list[str] | None = None, prog: str = "asr-ee mic") -> int:
    """Parse the options (:mod:`asr_ee.micapp.options`) and run the app."""
    from asr_ee.micapp.options import build_parser

    args = build_parser(prog).parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:  # a second Ctrl-C while finishing
        print("interrupted", file=sys.stderr)
        return 130
