"""WER of one exit per TTS engine and base voice, from an ``asr-ee evaluate`` folder (its
``utterances.jsonl``, or ``utterances.jsonl.gz`` as in exp/small/eval/) and the cut manifest it
evaluated (whose supervisions carry ``custom.engine`` and ``custom.base_voice``).

``scripts/wer_by_voice.py`` prints it as a table.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Literal

from asr_ee.config import ConfigError
from asr_ee.decoding.wer import WordErrors, word_errors
from asr_ee.evaluation.report import read_utterances

__all__ = ["voice_of", "wer_by"]


def voice_of(cuts_path: Path) -> dict[str, tuple[str, str]]:
    """Cut id -> (TTS engine, base voice), ``?`` where the manifest does not say."""
    from lhotse import CutSet

    if not Path(cuts_path).is_file():
        raise ConfigError(f"cut manifest {cuts_path} does not exist")
    out = {}
    for cut in CutSet.from_jsonl_lazy(cuts_path):
        custom = cut.supervisions[0].custom or {}
        out[cut.id] = (custom.get("engine", "?"), custom.get("base_voice", "?"))
    return out


def wer_by(eval_dir: Path, cuts_path: Path, exit_index: int = -1, decoding: str = "greedy",
           by: Literal["engine", "voice"] = "engine") -> dict[str, tuple[int, float]]:
    """Group (engine, or ``"engine voice"``) -> (reference words, WER %) of exit ``exit_index``."""
    voices = voice_of(cuts_path)
    groups: dict[str, WordErrors] = collections.defaultdict(WordErrors)
    for utt in read_utterances(eval_dir):
        if utt.get("reference") is None or utt["id"] not in voices:
            continue
        engine, base = voices[utt["id"]]
        group = engine if by == "engine" else f"{engine} {base}"
        groups[group] += word_errors(utt["reference"], utt["hypotheses"][decoding][exit_index])
    return {g: (groups[g].num_words, groups[g].wer) for g in sorted(groups)}
