"""Endpoint detection in the manner of sherpa-onnx: a segment ends when one of the rules holds.

Everything is measured in audio time of the current segment (encoder frames of 40 ms), never in
wall-clock time, so the same audio gives the same endpoints however fast it is decoded. The
maximum-length rule (rule 3) looks for a pause in the seconds before its limit rather than cutting
speech at the limit, wherever that falls (see :class:`~asr_ee.streaming.config.EndpointConfig`).
"""

from __future__ import annotations

import math

from asr_ee.models.flops import ENCODER_FRAMES_PER_SECOND
from asr_ee.streaming.config import EndpointConfig, EndpointRule

__all__ = ["rule_fires", "detect_endpoint", "split_pause_frames", "MIN_SPLIT_PAUSE_FRAMES"]

_EPS = 1e-9


def rule_fires(rule: EndpointRule, *, trailing_silence_s: float, utterance_length_s: float,
               has_text: bool) -> bool:
    if rule.must_contain_nonsilence and not has_text:
        return False
    return (trailing_silence_s + _EPS >= rule.min_trailing_silence_s
            and utterance_length_s + _EPS >= rule.min_utterance_length_s)


# The least blank run rule 3's split takes for a pause (160 ms): CTC emits blanks between the
# tokens of a word too, so shorter runs are no sign of a word boundary (on 27.7 s of flite sentences
# joined without pauses, a 2-frame floor cut "shopping" in two at 19.4 s; the 20 s limit itself fell
# between two words there).
MIN_SPLIT_PAUSE_FRAMES = 4


def split_pause_frames(config: EndpointConfig, segment_frames: int) -> int | None:
    """Blank frames that end a segment under rule 3's split at this length (None: not in the
    window, or past the limit where rule 3 fires anyway)."""
    limit_s, window_s = config.rule3.min_utterance_length_s, config.split_window_s
    length_s = segment_frames / ENCODER_FRAMES_PER_SECOND
    if window_s <= 0 or not limit_s - window_s - _EPS <= length_s < limit_s - _EPS:
        return None
    pause_s = config.split_pause_s * (limit_s - length_s) / window_s
    return max(MIN_SPLIT_PAUSE_FRAMES, math.ceil(pause_s * ENCODER_FRAMES_PER_SECOND - _EPS))


def detect_endpoint(config: EndpointConfig | None, *, segment_frames: int, trailing_blank_frames: int,
                    has_text: bool) -> str | None:
    """The name of the first rule that fires (``rule1``..``rule3``), or None.

    Args:
        segment_frames: encoder frames decoded in the current segment.
        trailing_blank_frames: how many of them, at the end, were blank (silence).
        has_text: whether the segment has decoded any token.
    """
    if config is None or segment_frames == 0:
        return None
    length_s = segment_frames / ENCODER_FRAMES_PER_SECOND
    silence_s = trailing_blank_frames / ENCODER_FRAMES_PER_SECOND
    for name, rule in config.rules():
        if rule_fires(rule, trailing_silence_s=silence_s, utterance_length_s=length_s, has_text=has_text):
            return name
    pause = split_pause_frames(config, segment_frames)
    if pause is not None and has_text and trailing_blank_frames >= pause:
        return "rule3"
    return None
