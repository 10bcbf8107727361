"""``asr-ee transcribe``: recognize files through the streaming path (chunks, early exits, load
controller), as fast as possible or with simulated real-time arrival (``--realtime``).

Inputs: audio files, folders (the audio files in them), ``-`` (audio on stdin), a lhotse cut
manifest (``--cuts``), or ``--audio-dir`` with ``--transcripts``. The recognizer is the one
``asr_ee.Recognizer.from_pretrained`` builds (:mod:`asr_ee.streaming.options`), with the model's
shipped defaults unless an option says otherwise.

Output (``--format``): ``text`` prints ``id<TAB>text`` per input;
``json`` one object per line: ``id``, ``source``, ``text``, ``segments`` and ``words`` (times in
seconds, confidences) and ``chunks`` (per chunk ``exit_layer``, ``criterion_value``, ``cap``,
``compute_ms``, ``backlog_ms``, ``cpu_load``); a file that cannot be read gets ``error`` instead.
``srt``/``vtt`` print subtitles (one input, or ``--output-dir``). With ``--output-dir`` each input
is written to ``DIR/<id>.<ext>``. With references, the word error rate goes to stderr. Exit
status 0 when at least one input was transcribed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from asr_ee.formats import EXTENSIONS, FORMATS
from asr_ee.streaming.options import HelpWithModelDefaults, add_recognizer_arguments

if TYPE_CHECKING:
    from asr_ee.api import Transcript
    from asr_ee.inputs import Utterance

__all__ = ["register", "run", "CHUNK_FIELDS"]

CHUNK_FIELDS = ("exit_layer", "criterion_value", "cap", "compute_ms", "backlog_ms", "cpu_load")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio through the streaming recognizer", add_help=False)
    p.add_argument("-h", "--help", action=HelpWithModelDefaults)
    p.add_argument("files", nargs="*", help="audio files (wav, flac, ogg, mp3, ...), folders of them, or - for stdin")
    p.add_argument("--cuts", help="lhotse cut manifest (.jsonl.gz)")
    p.add_argument("--audio-dir", help="folder of audio named by --transcripts")
    p.add_argument("--transcripts", help="Kaldi text file or TSV (with --audio-dir)")
    add_recognizer_arguments(p)
    p.add_argument("--realtime", action="store_true", help="feed audio at the speed it would arrive live")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="text (default), json (segments, words with times and confidences, chunk trace), srt, vtt")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--output-dir", help="write each input's transcript to DIR/<id>.<txt|json|srt|vtt>")
    p.add_argument("--show-exits", action="store_true",
                   help="after each text line, the exit layer of every chunk and the compute used")
    p.set_defaults(func=run)


def _utterances(args: argparse.Namespace) -> "list[Utterance]":
    from asr_ee.inputs import InputError, from_cuts, from_files, from_transcripts

    forms = [bool(args.files), bool(args.cuts), bool(args.audio_dir or args.transcripts)]
    if sum(forms) != 1:
        raise InputError("give audio files, or --cuts, or --audio-dir with --transcripts (exactly one)")
    if args.cuts:
        return from_cuts(args.cuts)
    if args.audio_dir or args.transcripts:
        if not (args.audio_dir and args.transcripts):
            raise InputError("--audio-dir and --transcripts go together")
        return from_transcripts(args.audio_dir, args.transcripts)
    return from_files(args.files)


def _output_format(args: argparse.Namespace, count: int) -> str:
    from asr_ee.config import ConfigError

    if args.json and args.format not in (None, "json"):
        raise ConfigError(f"--json and --format {args.format} contradict each other")
    fmt = "json" if args.json else (args.format or "text")
    if fmt in ("srt", "vtt") and count > 1 and not args.output_dir:
        raise ConfigError(f"--format {fmt} with {count} inputs needs --output-dir (one subtitle file each)")
    return fmt


def _exits_line(transcript: "Transcript") -> str:
    layers = [c.exit_layer for c in transcript.chunks]
    compute = sum(c.compute_fraction * c.frames for c in transcript.chunks) / sum(c.frames for c in transcript.chunks)
    return (f"  exits per chunk: {' '.join(map(str, layers))}  (mean layer {sum(layers) / len(layers):.1f}, "
            f"{100 * compute:.0f}% of full-depth compute)\n")


def _render(utt: "Utterance", transcript: "Transcript", fmt: str, args: argparse.Namespace) -> str:
    from asr_ee.formats import format_transcript

    extra = {"source": utt.source, **({"reference": utt.reference} if utt.reference is not None else {})}
    utt_id = utt.id if fmt == "json" or not args.output_dir else None
    out = format_transcript(transcript, fmt, utt_id=utt_id, extra=extra, chunk_fields=CHUNK_FIELDS)
    if fmt == "text" and args.show_exits and transcript.chunks:
        out += _exits_line(transcript)
    return out


def _emit(utt: "Utterance", text: str, fmt: str, output_dir: Path | None) -> None:
    if output_dir is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = output_dir / f"{utt.id.replace('/', '_')}{EXTENSIONS[fmt]}"
    partial = target.with_name(target.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)


def run(args: argparse.Namespace) -> int:
    import json

    from asr_ee.api import Recognizer
    from asr_ee.audio import AudioError
    from asr_ee.config import CheckpointError, ConfigError
    from asr_ee.decoding.wer import WordErrors, word_errors
    from asr_ee.features import SAMPLE_RATE
    from asr_ee.inputs import InputError
    from asr_ee.streaming.options import recognizer_from_args

    try:
        utterances = _utterances(args)
        fmt = _output_format(args, len(utterances))
        output_dir = Path(args.output_dir) if args.output_dir else None
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)
        recognizer = recognizer_from_args(args, recognizer_class=Recognizer)
    except (ConfigError, InputError, CheckpointError, FileNotFoundError, OSError) as e:
        print(f"asr-ee transcribe: {e}", file=sys.stderr)
        return 2
    assert isinstance(recognizer, Recognizer)
    done, failed, errors = 0, 0, WordErrors()
    for utt in utterances:
        try:
            if utt.path is not None and not args.realtime:  # a file: read block by block
                transcript = recognizer.transcribe(utt.path)
            else:
                transcript = recognizer.transcribe(utt.load_samples(), sample_rate=SAMPLE_RATE,
                                                  realtime=args.realtime)
        except AudioError as e:
            failed += 1
            print(f"asr-ee transcribe: {utt.id}: {e}", file=sys.stderr)
            if fmt == "json" and output_dir is None:
                print(json.dumps({"id": utt.id, "source": utt.source, "error": str(e)}), flush=True)
            continue
        _emit(utt, _render(utt, transcript, fmt, args), fmt, output_dir)
        done += 1
        if utt.reference is not None:
            errors = errors + word_errors(utt.reference, transcript.text)
    if errors.num_words:
        print(f"WER {errors.wer:.2f}% ({errors.errors} errors / {errors.num_words} words, "
              f"{done} utterances)", file=sys.stderr)
    if failed:
        print(f"asr-ee transcribe: {failed} of {failed + done} utterances could not be read", file=sys.stderr)
    return 0 if done else 1
