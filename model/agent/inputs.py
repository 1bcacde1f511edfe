"""Input embeddings of the agent's backbone, one frame's positions at a time.

Each frame i has `positions_per_frame` = 1 + R + L2 positions (the layout is described and
justified in model.agent.model). Everything the agent receives between two of its frames is summed
into the frame's first position, the control slot; each input that is missing contributes its own
learned empty embedding instead, which is distinct from silence or stillness.
"""

import math

import torch
from torch import nn

from model.agent.config import AgentConfig
from model.render.scene import OBJECT_KINDS, SceneObject

EMPTY_INPUTS = ("prompt", "trajectory", "identity", "human_audio", "human_visual", "agent_visual")
TIME_FEATURES = 32  # sinusoidal features of the frame index; RoPE already orders positions
SCENE_FEATURES = len(OBJECT_KINDS) + 3 + 3  # kind one-hot, position (m), colour (0..1)


def scene_features(objects: "list[SceneObject] | tuple[SceneObject, ...]", slots: int) -> torch.Tensor:
    """The scene as the agent reads it (slots, SCENE_FEATURES): one row per object, zero rows after
    the last (an empty slot adds nothing); more objects than slots is an error."""
    if len(objects) > slots:
        raise ValueError(f"the scene has {len(objects)} objects; this agent reads at most {slots}")
    rows = torch.zeros(slots, SCENE_FEATURES)
    for row, obj in zip(rows, objects):
        row[OBJECT_KINDS.index(obj.kind)] = 1.0
        row[len(OBJECT_KINDS): len(OBJECT_KINDS) + 3] = torch.tensor(obj.position)
        row[len(OBJECT_KINDS) + 3:] = torch.tensor(obj.colour) / 255
    return rows


class FrameEmbedder(nn.Module):
    """Embeds the control slot, the agent's audio slots and the agent's visual query slots."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__()
        h, k, r = config.hidden_size, config.num_codebooks, config.audio_frames_per_video_frame
        self.config = config
        self.prompt = nn.Linear(config.prompt_dim, h)
        self.trajectory = nn.Linear(config.trajectory_dim, h)
        self.identity = nn.Embedding(config.num_identities, h)
        self.time = nn.Linear(TIME_FEATURES, h)
        # One table for all codebooks (codebook k's codes offset by k * size): one lookup per step.
        self.human_codes = nn.Embedding(k * config.codebook_size, h)
        self.human_audio = nn.Linear(r * h, h)  # keeps the order of the R audio frames
        self.human_visual = nn.Linear(config.human_visual_tokens * config.human_visual_token_dim, h)
        self.agent_codes = nn.Embedding(k * (config.codebook_size + 1), h)  # + the delay special token
        self.agent_visual = nn.Linear(config.visual_tokens * config.visual_token_dim, h)
        self.empty = nn.ParameterDict({name: nn.Parameter(torch.randn(h) * 0.02) for name in EMPTY_INPUTS})
        if config.scene_objects:  # only then: checkpoints of agents without the input keep their keys
            self.scene = nn.Linear(SCENE_FEATURES, h, bias=False)  # no bias: an empty slot adds nothing
            self.empty["scene"] = nn.Parameter(torch.randn(h) * 0.02)
        self.slots = nn.Parameter(torch.randn(config.positions_per_frame, h) * 0.02)
        # Zero at first, so an agent trained without the turn feature starts out unchanged.
        self.turn = nn.Embedding(config.turn_buckets, h) if config.turn_buckets else None
        if self.turn is not None:
            nn.init.zeros_(self.turn.weight)
        # The inner monologue's tokens, added to the audio steps of their frame; zero at first, so an
        # agent that gains the text stream speaks as before until training uses it.
        self.text = nn.Embedding(config.text_vocab, h) if config.text_vocab else None
        if self.text is not None:
            nn.init.zeros_(self.text.weight)
        self.register_buffer("quiet_codes", torch.tensor(config.quiet_codes, dtype=torch.long), persistent=False)
        self.register_buffer("human_offsets", torch.arange(k) * config.codebook_size, persistent=False)
        self.register_buffer("agent_offsets", torch.arange(k) * (config.codebook_size + 1), persistent=False)

    def control(
        self,
        frame_index: torch.Tensor,
        batch_size: int,
        prompt: torch.Tensor | None = None,
        trajectory: torch.Tensor | None = None,
        identity: torch.Tensor | None = None,
        human_audio: torch.Tensor | None = None,
        human_visual: torch.Tensor | None = None,
        agent_visual: torch.Tensor | None = None,
        present: dict[str, torch.Tensor] | None = None,
        turn: torch.Tensor | None = None,
        scene: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The control slot of frames `frame_index` (T,) -> (B, T, H).

        prompt (B, P), trajectory (B, T, J), identity (B,), human_audio (B, T, R, K) codes,
        scene (B, N, SCENE_FEATURES) (agents with scene_objects > 0),
        human_visual (B, T, L2h, Dh) and agent_visual (B, T, L2, D) are already aligned with the
        frames they condition (the human's and the agent's previous frame). `present[name]` (B, T)
        replaces the embedding of absent frames by the empty one. `turn` (B, T) are the frames'
        turn buckets (`turn_buckets`), used when the configuration has the turn feature.
        """
        b, t = batch_size, frame_index.shape[0]
        inputs = {
            "prompt": None if prompt is None else self.prompt(prompt)[:, None, :],  # (B, 1, H)
            "trajectory": None if trajectory is None else self.trajectory(trajectory),
            "identity": None if identity is None else self.identity(identity)[:, None, :],  # (B, 1, H)
            "human_audio": None if human_audio is None else self._human_audio(human_audio),
            "human_visual": None if human_visual is None else self.human_visual(human_visual.flatten(-2)),
            "agent_visual": None if agent_visual is None else self.agent_visual(agent_visual.flatten(-2)),
        }
        if self.config.scene_objects:
            inputs["scene"] = None if scene is None else self.scene(scene).sum(1)[:, None, :]  # (B, 1, H)
        elif scene is not None:
            raise ValueError("this agent has no scene input (AgentConfig.scene_objects = 0)")
        total = self.slots[0] + self.time(_sinusoid(frame_index))  # (T, H)
        if self.turn is not None:
            turn = torch.zeros(b, t, dtype=torch.long, device=frame_index.device) if turn is None else turn
            total = total + self.turn(turn)  # (B, T, H)
        present = present or {}
        for name, value in inputs.items():
            if value is None:
                total = total + self.empty[name]
            elif name in present:
                total = total + torch.where(present[name][..., None], value, self.empty[name])
            else:
                total = total + value
        return total.expand(b, t, -1)  # (B, T, H)

    def human_quiet(self, codes: torch.Tensor) -> torch.Tensor:
        """Human codes (..., R, K) -> (...) bool: every audio frame's codebook-0 code is a quiet one."""
        return (codes[..., 0, None] == self.quiet_codes).any(-1).all(-1)

    def _human_audio(self, codes: torch.Tensor) -> torch.Tensor:
        """Human codes (B, T, R, K) -> (B, T, H): summed codebook embeddings, R frames concatenated."""
        frames = self.human_codes(codes + self.human_offsets).sum(-2)  # (B, T, R, H)
        return self.human_audio(frames.flatten(-2))  # (B, T, R * H) -> (B, T, H)

    def agent_audio(self, tokens: torch.Tensor, first_slot: int = 1, text: torch.Tensor | None = None) -> torch.Tensor:
        """Delayed agent tokens (..., n, K) -> summed codebook embeddings plus slot embeddings (..., n, H).

        `text` (...) long, the frame's monologue token (agents with text_vocab > 0; None = PAD), is
        added to every one of the n steps: a frame's audio reads the frame's text.
        """
        n = tokens.shape[-2]
        summed = self.agent_codes(tokens + self.agent_offsets).sum(-2)  # (..., n, H)
        summed = summed + self.slots[first_slot : first_slot + n]
        if self.text is not None:
            text = torch.zeros(tokens.shape[:-2], dtype=torch.long, device=tokens.device) if text is None else text
            summed = summed + self.text(text)[..., None, :]
        elif text is not None:
            raise ValueError("this agent has no text stream (AgentConfig.text_vocab = 0)")
        return summed

    def visual_queries(self) -> torch.Tensor:
        """The L2 visual slots' inputs (L2, H): learned queries; the tokens come out of these slots."""
        return self.slots[1 + self.config.audio_frames_per_video_frame :]


def _sinusoid(index: torch.Tensor) -> torch.Tensor:
    half = TIME_FEATURES // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=index.device) / half)
    args = index.to(torch.float32)[:, None] * freqs  # (T, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (T, TIME_FEATURES)


def turn_buckets(quiet: torch.Tensor, buckets: int) -> torch.Tensor:
    """Per frame (B, T) bool "the human is quiet" -> (B, T) long: 0 while the human has not spoken
    yet, else 1 + the frames since their last loud frame, capped at buckets - 2 (0 while they speak).

    Why: when to take the turn is a function of how long the human has been silent; learnt
    through attention alone, one onset per clip, a small agent never learnt it (a flat onset
    hazard, silent at temperature 0.7). Given as an input, it is one embedding per gap length.
    """
    index = torch.arange(quiet.shape[-1], device=quiet.device)
    last_loud = torch.where(quiet, -1, index).cummax(-1).values  # (B, T), -1 before any loud frame
    since = (index - last_loud).clamp(max=buckets - 2)
    return torch.where(last_loud >= 0, since + 1, 0)
