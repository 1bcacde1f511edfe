"""Identity consistency: does the agent sound and stand like the identity it was asked to be.

Why this exists: G carries a learned identity embedding; annotators judge whether the voice and
body match the persona. Voice: the median fundamental frequency of the agent's speech (Praat's
pitch tracker, through parselmouth) against the identity's own espeak-ng voice. Body: with motion
tokens the bone lengths come from the identity at render time, so proportions can only drift
through posture (a sinking root, a collapsed spine, hunched shoulders); the posed body's standing
height and shoulder width in the camera plane are compared with the identity's rest values.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import parselmouth
import torch

from model.data.speech import synthesize
from model.metrics.exchange import Exchange
from model.motion import IDENTITIES, SKELETON, forward_kinematics, rest_positions

PITCH_FLOOR_HZ = 60.0  # below every espeak-ng voice the corpus uses (the lowest sits near 85 Hz)
PITCH_CEILING_HZ = 500.0  # above the highest (~250 Hz) with room for an octave error to show
VOICE_TOLERANCE_SEMITONES = 12.0  # an octave off scores 0: another register, another person
BODY_TOLERANCE = 0.25  # a posture 25% shorter or narrower than the identity's scores 0
# Sentences the reference pitch of each identity's voice is measured on: varied intonation.
REFERENCE_SENTENCES = ("I am doing well, thank you for asking.", "Where is the station? It is two streets down.",
                       "Good morning! It is nice to see you again today.")


def median_pitch(wave: np.ndarray, sample_rate: int) -> float:
    """Median F0 in Hz over the voiced frames of a mono wave; NaN when nothing in it is voiced."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.size < sample_rate // 10:
        return math.nan
    pitch = parselmouth.Sound(wave, sampling_frequency=sample_rate).to_pitch(
        pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
    f0 = pitch.selected_array["frequency"]
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size else math.nan


@functools.cache
def identity_pitch(identity: int, sample_rate: int = 24_000) -> float:
    """The median F0 (Hz) of the identity's espeak-ng voice over REFERENCE_SENTENCES."""
    voice = IDENTITIES[identity].voice
    wave = np.concatenate([synthesize(text, sample_rate, voice).numpy() for text in REFERENCE_SENTENCES])
    return median_pitch(wave, sample_rate)


def pitch_error_semitones(exchange: Exchange) -> float:
    """Signed distance in semitones of the agent's median pitch from its identity's: 0 is the
    identity's voice, +12 an octave too high. NaN when the agent says nothing voiced."""
    f0 = median_pitch(exchange.agent_wave, exchange.sample_rate)
    if math.isnan(f0):
        return math.nan
    return 12 * math.log2(f0 / identity_pitch(exchange.identity, exchange.sample_rate))


def voice_distance_semitones(exchange: Exchange) -> float:
    """How far in semitones the agent's median pitch lies from its identity's, either way: 0 is the
    identity's voice, 12 an octave off, and it keeps growing past the octave where
    `voice_consistency` stops at 0 (so two wrong voices still rank). NaN when nothing is voiced."""
    return abs(pitch_error_semitones(exchange))


def voice_consistency(exchange: Exchange) -> float:
    """1.0: the agent speaks at its identity's pitch; falls linearly to 0.0 at an octave
    (VOICE_TOLERANCE_SEMITONES) away. NaN when the agent says nothing voiced."""
    error = pitch_error_semitones(exchange)
    return max(0.0, 1 - abs(error) / VOICE_TOLERANCE_SEMITONES) if not math.isnan(error) else math.nan


def nearest_identity_by_pitch(exchange: Exchange) -> int | None:
    """The identity whose voice is closest in pitch to the agent's (None when nothing is voiced)."""
    f0 = median_pitch(exchange.agent_wave, exchange.sample_rate)
    if math.isnan(f0):
        return None
    distances = [abs(math.log2(f0 / identity_pitch(i, exchange.sample_rate))) for i in range(len(IDENTITIES))]
    return int(np.argmin(distances))


def body_proportions(poses: np.ndarray, identity: int) -> np.ndarray:
    """Per frame (T, 2): standing height (the head joint above the floor) and shoulder width in
    the camera's x-y plane, in metres, of the posed body on the identity's proportions."""
    joints = forward_kinematics(torch.as_tensor(np.asarray(poses, dtype=np.float32)), identity=IDENTITIES[identity])
    return _proportions(joints.numpy())


def body_consistency(exchange: Exchange) -> float:
    """1.0: the posed body keeps the identity's standing height and shoulder width in every frame;
    falls linearly to 0.0 at a mean relative error of BODY_TOLERANCE."""
    posed = body_proportions(exchange.poses, exchange.identity)  # (T, 2)
    rest = _proportions(rest_positions(identity=IDENTITIES[exchange.identity]).numpy()[None])[0]  # (2,)
    error = float(np.abs(posed / rest - 1).mean())
    return max(0.0, 1 - error / BODY_TOLERANCE)


def _proportions(joints: np.ndarray) -> np.ndarray:
    """(T, J, 3) joint positions -> (T, 2) standing height and camera-plane shoulder width."""
    index = SKELETON.index
    height = joints[:, index("head"), 1]  # the floor is y = 0: a sinking or floating body changes it too
    shoulders = joints[:, index("shoulder_l"), :2] - joints[:, index("shoulder_r"), :2]
    return np.stack([height, np.linalg.norm(shoulders, axis=-1)], axis=-1)
