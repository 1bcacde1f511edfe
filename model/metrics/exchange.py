"""One exchange, the unit every behaviour metric scores: a human turn and the agent's behaviour on it.

Why this exists: the metrics must score the agent's samples, corpus clips (the ceiling) and stored
rollouts alike, so they take plain arrays on one shared timeline rather than any of those types.
The builders below turn each source into an exchange.

Timeline: T video frames at ``fps``; both waves hold T * sample_rate / fps samples (a shorter
wave is padded with silence, a longer one cut). ``human_span`` is the (first, end) frame of the
human's voiced turn, end exclusive; when not given it is measured from the human's wave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from model.agent import PoseTokenizer, Rollout
from model.codec import AudioCodec
from model.data.dialogue import DialogueClip, DialogueConfig
from model.metrics.activity import ACTIVITY, ActivityConfig, frame_loudness_db, true_runs, voice_activity
from model.metrics.manipulation import requested_object
from model.motion import IDENTITIES, POSE_DIM
from model.render import SceneObject
from model.respond import AgentResponse


@dataclass
class Exchange:
    """A human turn and the agent's voice and motion over the same timeline (see the module docstring)."""

    human_wave: np.ndarray  # (S,) float32 mono: the human's channel only
    agent_wave: np.ndarray  # (S,) float32 mono: the agent's channel only
    poses: np.ndarray  # (T, POSE_DIM) float32: the agent's motion (model.motion layout)
    fps: int
    sample_rate: int
    identity: int  # index into model.motion.IDENTITIES the agent was asked to be
    prompt: str = ""
    objects: tuple[SceneObject, ...] = ()
    requested: int | None = None  # index into objects the prompt asks the agent to pick up; None: nothing asked
    answer: str | None = None  # the expected answer text, when known (intelligibility)
    human_span: tuple[int, int] | None = None  # (first, end) frames of the human's voiced turn
    activity: ActivityConfig = field(default=ACTIVITY, repr=False)

    def __post_init__(self) -> None:
        poses = np.asarray(self.poses, dtype=np.float32)
        if poses.ndim != 2 or poses.shape[1] != POSE_DIM or poses.shape[0] == 0:
            raise ValueError(f"poses must have shape (T, {POSE_DIM}) with T > 0, got {poses.shape}")
        if float(self.fps).is_integer():  # the responder reports fps as a float derived from the codec
            self.fps = int(self.fps)
        if self.fps <= 0 or self.sample_rate <= 0 or not isinstance(self.fps, int) or self.sample_rate % self.fps:
            raise ValueError(f"sample rate {self.sample_rate} Hz must be a positive multiple of fps {self.fps}")
        if not 0 <= self.identity < len(IDENTITIES):
            raise ValueError(f"identity must lie in [0, {len(IDENTITIES)}), got {self.identity}")
        self.objects = tuple(self.objects)
        if self.requested is not None and not 0 <= self.requested < len(self.objects):
            raise ValueError(f"requested object {self.requested} is not one of the {len(self.objects)} scene objects")
        self.poses = poses
        samples = self.num_frames * self.samples_per_frame
        self.human_wave = _fit_wave(self.human_wave, samples, "human_wave")
        self.agent_wave = _fit_wave(self.agent_wave, samples, "agent_wave")
        if self.human_span is None:
            runs = true_runs(self.human_activity)
            self.human_span = (runs[0][0], runs[-1][1]) if runs else (0, 0)
        first, end = self.human_span
        if not 0 <= first <= end <= self.num_frames:
            raise ValueError(f"human_span {self.human_span} does not lie within the {self.num_frames} frames")

    @property
    def num_frames(self) -> int:
        return self.poses.shape[0]

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps

    @property
    def agent_loudness_db(self) -> np.ndarray:
        """(T,) the agent channel's level per frame, dBFS."""
        return frame_loudness_db(self.agent_wave, self.sample_rate, self.fps, self.num_frames)

    @property
    def human_activity(self) -> np.ndarray:
        """(T,) bool: frames in which the human speaks."""
        loudness = frame_loudness_db(self.human_wave, self.sample_rate, self.fps, self.num_frames)
        return voice_activity(loudness, self.fps, self.activity)

    @property
    def agent_activity(self) -> np.ndarray:
        """(T,) bool: frames in which the agent speaks."""
        return voice_activity(self.agent_loudness_db, self.fps, self.activity)


def exchange_from_clip(clip: DialogueClip, codec: AudioCodec | None = None,
                       config: DialogueConfig = DialogueConfig()) -> Exchange:
    """A corpus clip as an exchange: the ceiling every metric is compared with.

    With ``codec`` the agent's voice is its codes decoded (what a perfect agent could at best
    produce through that codec); without, the clean espeak-ng wave.
    """
    agent_wave = clip.agent_wave if codec is None else codec.decode(clip.agent_codes)
    return Exchange(
        human_wave=_numpy(clip.human_wave), agent_wave=_numpy(agent_wave), poses=_numpy(clip.poses),
        fps=config.fps, sample_rate=config.sample_rate, identity=clip.identity, prompt=clip.prompt, answer=clip.answer, human_span=clip.human_span,
        objects=clip.objects, requested=clip.requested,
    )


def exchange_from_rollout(rollout: Rollout, codec: AudioCodec, human_wave: np.ndarray, *, prompt: str = "",
                          identity: int | None = None, objects: Sequence[SceneObject] = (), answer: str | None = None,
                          fps: int = 24, human_span: tuple[int, int] | None = None) -> Exchange:
    """A sampled (or stored) rollout on the human turn it answered.

    ``human_wave`` is the turn as the responder got it (mono, codec rate, starting at frame 0);
    the agent's voice is the rollout's codes decoded by ``codec``, its motion the visual tokens
    decoded by the motion tokenizer. The prompt names what the agent was asked to pick up, if anything.
    """
    identity = rollout.identity if identity is None else identity
    if identity is None:
        raise ValueError("the rollout records no identity; pass the identity it was sampled with")
    tokens = rollout.visual_tokens.detach().cpu()
    poses = PoseTokenizer.for_motion(num_tokens=tokens.shape[-2], token_dim=tokens.shape[-1]).decode(tokens)
    agent_wave = codec.decode(rollout.audio_codes.detach().cpu())
    objects = tuple(objects)
    return Exchange(
        human_wave=np.asarray(human_wave, dtype=np.float32), agent_wave=_numpy(agent_wave), poses=_numpy(poses),
        fps=fps, sample_rate=codec.sample_rate, identity=identity, prompt=prompt, objects=objects,
        requested=requested_object(prompt, objects), answer=answer, human_span=human_span,
    )


def exchange_from_response(response: AgentResponse, codec: AudioCodec, human_wave: np.ndarray, *, prompt: str = "",
                           identity: int | None = None, objects: Sequence[SceneObject] = (),
                           answer: str | None = None) -> Exchange:
    """What model.respond.Responder.respond returned, on the human turn it was given (the same arguments)."""
    return exchange_from_rollout(response.rollout, codec, human_wave, prompt=prompt, identity=identity,
                                 objects=objects, answer=answer, fps=response.fps)


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _fit_wave(wave: np.ndarray, samples: int, name: str) -> np.ndarray:
    """The wave cut or padded with silence to `samples`, as float32 mono."""
    wave = np.asarray(_numpy(wave), dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"{name} must be mono (S,), got shape {wave.shape}")
    if not np.isfinite(wave).all():
        raise ValueError(f"{name} contains NaN or infinite samples")
    out = np.zeros(samples, dtype=np.float32)
    n = min(samples, wave.size)
    out[:n] = wave[:n]
    return out
