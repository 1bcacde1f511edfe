"""Who is speaking when: per-video-frame loudness and voice activity of one channel.

Why this exists: response rate, listening, latency, lip-sync and intelligibility all ask when a
party's channel carries speech. One detector, tuned on the project's espeak-ng corpus and its
codec round trip, answers for all of them, so the metrics agree with each other.

A frame is active when its RMS is above ``threshold_db`` dBFS; runs of activity separated by
less than ``max_gap_seconds`` (the pauses between words) merge into one stretch of speech, and
stretches shorter than ``min_speech_seconds`` (clicks, a codec's stray frame) are dropped.
Example at 10 fps with the defaults' gap of 0.25 s and minimum of 0.1 s::

    frame dB : -20 -20 -60 -20 -60 -60 -60 -20 -60 -60
    active   :   1   1   1   1   0   0   0   1   0   0    (one-frame gap filled; the lone frame kept: 0.1 s)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ActivityConfig:
    """Thresholds of the voice activity detector."""

    threshold_db: float = -45.0  # dBFS RMS per frame; espeak-ng speech sits at -25..-15, a silent agent's codec output at -98
    max_gap_seconds: float = 0.25  # pauses between words are shorter; the corpus's turn gaps are 0.25 s or longer
    min_speech_seconds: float = 0.1  # a syllable lasts longer; single codec frames of noise do not


ACTIVITY = ActivityConfig()


def frame_loudness_db(wave: np.ndarray, sample_rate: int, fps: float, frames: int | None = None) -> np.ndarray:
    """RMS level (T,) in dBFS of each video frame of a mono wave, floored at -120 dB.

    ``frames`` fixes T: a shorter wave is padded with silence, a longer one cut.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise ValueError(f"wave must be mono (S,), got shape {wave.shape}")
    per_frame = sample_rate / fps
    if not float(per_frame).is_integer():
        raise ValueError(f"sample rate {sample_rate} Hz is not a whole number of samples per frame at {fps} fps")
    per_frame = int(per_frame)
    frames = wave.size // per_frame if frames is None else frames
    padded = np.zeros(frames * per_frame)
    n = min(wave.size, padded.size)
    padded[:n] = wave[:n]
    rms = np.sqrt((padded.reshape(frames, per_frame) ** 2).mean(axis=1))  # (T,)
    return 20 * np.log10(np.maximum(rms, 1e-6))


def voice_activity(loudness_db: np.ndarray, fps: float, config: ActivityConfig = ACTIVITY) -> np.ndarray:
    """Speech frames (T,) bool from per-frame loudness (see the module docstring)."""
    active = np.asarray(loudness_db) > config.threshold_db
    max_gap = int(round(config.max_gap_seconds * fps))
    min_run = max(1, int(round(config.min_speech_seconds * fps)))
    runs = true_runs(active)
    merged: list[list[int]] = []
    for first, end in runs:
        if merged and first - merged[-1][1] <= max_gap:
            merged[-1][1] = end
        else:
            merged.append([first, end])
    out = np.zeros_like(active)
    for first, end in merged:
        if end - first >= min_run:
            out[first:end] = True
    return out


def true_runs(active: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) frame pairs of each run of True, end exclusive: [0, 1, 1, 0, 1] -> [(1, 3), (4, 5)]."""
    padded = np.concatenate([[False], np.asarray(active, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])  # starts and ends alternate
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
