"""Answering one human turn: the pipeline a sampling worker runs, with no database in sight.

    human wave --codec--> human codes --G (prompt, identity, variant's sampling)--> agent codes
    + visual tokens --codec / visual tokenizer--> agent voice + poses (rendered) or pixels -> frames + audio

The visual tokenizer is the one the agent's configuration names (`AgentConfig.visual_tokenizer`);
the video frame rate is the agent's, derived from its codec, and the codec must match it. The
agent may live on any device: its inputs are moved there and its outputs back to the CPU.

The agent runs over the whole timeline, duplex: it listens (and may react) while the human's
turn plays, then keeps going for ``response_seconds`` after the turn ends, while the human's
channel carries silence. The clip an annotator judges shows the agent and plays both voices.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.agent import AgentModel, Rollout, SamplingParams, make_visual_tokenizer
from model.agent.inputs import scene_features
from model.codec import AudioCodec
from model.data.monologue import decode_text
from model.motion import IDENTITIES
from model.render import SceneObject, render_frames
from model.render.scene import carried_positions
from model.text import TextEncoder


@dataclass(frozen=True)
class ResponseConfig:
    """How a human turn becomes an agent clip."""

    response_seconds: float = 4.0  # the agent answers for this long after the human stops
    max_turn_seconds: float = 60.0  # the labeling site refuses longer uploads anyway
    width: int = 640  # the paper samples 640x360 (landscape) to 360x640 (portrait)
    height: int = 360
    human_gain: float = 0.5  # the human's voice is mixed in quieter, so the agent's stands out

    def __post_init__(self) -> None:
        if self.response_seconds <= 0 or self.max_turn_seconds <= 0:
            raise ValueError("response_seconds and max_turn_seconds must be > 0")
        if self.width < 64 or self.height < 64:
            raise ValueError(f"render size must be at least 64x64, got {self.width}x{self.height}")


@dataclass
class AgentResponse:
    """One sampled response: the rollout (tokens and log-probs, for PPO) and what people see."""

    rollout: Rollout
    frames: np.ndarray  # (T, H, W, 3) uint8
    audio: np.ndarray  # (S,) float32 at sample_rate: the agent's voice with the human's mixed in
    sample_rate: int
    fps: float
    sample_seconds: float
    render_seconds: float

    @property
    def duration_seconds(self) -> float:
        return len(self.frames) / self.fps

    @property
    def monologue(self) -> str | None:
        """The text the agent planned to say (its inner monologue), None for an agent without one."""
        tokens = self.rollout.text_tokens
        return None if tokens is None else decode_text(tokens)


class Responder:
    """Holds a loaded agent, codec and text encoder; answers turns under any sampling params."""

    def __init__(self, agent: AgentModel, codec: AudioCodec, text_encoder: TextEncoder,
                 config: ResponseConfig = ResponseConfig()) -> None:
        c = agent.config
        c.check_codec(codec)
        samples = codec.sample_rate * c.audio_frames_per_video_frame / codec.frame_rate
        if not math.isclose(samples, round(samples)):
            raise ValueError(f"a video frame of {c.audio_frames_per_video_frame} codec frames is {samples} samples; "
                             "the codec's hop must be a whole number of samples")
        if text_encoder.dim != c.prompt_dim:
            raise ValueError(f"text encoder gives {text_encoder.dim} dims, the agent expects {c.prompt_dim}")
        self.agent, self.codec, self.text_encoder, self.config = agent.eval(), codec, text_encoder, config
        self.samples_per_frame = round(samples)
        self.visual = make_visual_tokenizer(c.visual_tokenizer, num_tokens=c.visual_tokens,
                                            token_dim=c.visual_token_dim)
        self.device = next(agent.parameters()).device

    def respond(self, human_wave: np.ndarray, prompt: str, identity: int, objects: Sequence[SceneObject],
                params: SamplingParams, progress: Callable[[float], None] | None = None) -> AgentResponse:
        """Sample the agent's response to ``human_wave`` (mono float32 at the codec's rate).

        ``progress`` is called with a fraction in [0, 1) as frames are sampled and rendered.
        """
        c, codec = self.agent.config, self.codec
        if human_wave.ndim != 1 or human_wave.size == 0:
            raise ValueError(f"human_wave must be a non-empty mono array (S,), got shape {human_wave.shape}")
        turn_seconds = human_wave.size / codec.sample_rate
        if turn_seconds > self.config.max_turn_seconds:
            raise ValueError(f"the turn lasts {turn_seconds:.1f} s; at most {self.config.max_turn_seconds:.0f} s")
        if not 0 <= identity < min(c.num_identities, len(IDENTITIES)):
            raise ValueError(f"identity must lie in [0, {min(c.num_identities, len(IDENTITIES))}), got {identity}")
        report = progress or (lambda fraction: None)

        started = time.perf_counter()
        frames = math.ceil((turn_seconds + self.config.response_seconds) * c.fps)
        timeline = np.zeros(frames * self.samples_per_frame, dtype=np.float32)
        timeline[: human_wave.size] = human_wave[: timeline.size]
        human_codes = codec.encode(torch.from_numpy(timeline), codec.sample_rate)  # (K, F)
        human_codes = _fit_length(human_codes, frames * c.audio_frames_per_video_frame).to(self.device)
        prompt_embedding = self.text_encoder.encode([prompt])[0].to(self.device) if prompt else None

        scene = scene_features(tuple(objects), c.scene_objects).to(self.device) if c.scene_objects else None
        session = self.agent.session(params, prompt=prompt_embedding, identity=identity, scene=scene)
        r = c.audio_frames_per_video_frame
        with torch.inference_mode():
            for i in range(frames):
                session.step(human_audio=None if i == 0 else human_codes[:, (i - 1) * r: i * r])
                if i % 12 == 0:
                    report(0.8 * i / frames)
        rollout = session.rollout()
        agent_wave = codec.decode(rollout.audio_codes.cpu()).numpy()  # (S',)
        sample_seconds = time.perf_counter() - started

        started = time.perf_counter()
        rendered = self.frames(rollout.visual_tokens.cpu(), identity, objects)
        report(0.95)
        audio = _mix(agent_wave, timeline, self.config.human_gain)
        render_seconds = time.perf_counter() - started
        return AgentResponse(rollout=rollout, frames=rendered, audio=audio, sample_rate=codec.sample_rate,
                             fps=c.fps, sample_seconds=sample_seconds, render_seconds=render_seconds)


    def frames(self, visual_tokens: torch.Tensor, identity: int, objects: Sequence[SceneObject]) -> np.ndarray:
        """The frames (T, H, W, 3) uint8 people see for visual tokens (T, L2, D): rendered poses, or
        decoded pixels resized to the response size (the scene is then part of the pixels)."""
        decoded = self.visual.decode(visual_tokens)
        if self.visual.produces == "poses":
            objects = tuple(objects)  # drawn where the agent's hand carries them, if it grasps one
            return render_frames(decoded, IDENTITIES[identity], objects, width=self.config.width,
                                 height=self.config.height,
                                 object_positions=carried_positions(decoded, IDENTITIES[identity], objects, self.agent.config.fps))
        images = F.interpolate(decoded.permute(0, 3, 1, 2), size=(self.config.height, self.config.width),
                               mode="bilinear", align_corners=False)  # (T, 3, H, W)
        return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _fit_length(codes: torch.Tensor, length: int) -> torch.Tensor:
    """Trim or edge-pad codes (K, F) to (K, length): codec framing may differ by a frame or two."""
    if codes.shape[1] >= length:
        return codes[:, :length]
    pad = codes[:, -1:].expand(-1, length - codes.shape[1])
    return torch.cat([codes, pad], dim=1)


def _mix(agent: np.ndarray, human: np.ndarray, human_gain: float) -> np.ndarray:
    """Sum the two voices on the human's timeline and keep the result within [-1, 1]."""
    mixed = human_gain * human.astype(np.float32)
    n = min(agent.size, mixed.size)
    mixed[:n] += agent[:n]
    peak = float(np.abs(mixed).max(initial=0.0))
    return mixed / peak if peak > 1.0 else mixed
