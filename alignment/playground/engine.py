"""Sample and score agents on one turn, the playground's only computation (no UI, no Django).

Why this exists: the playground must show the same clip durations and behaviour metrics that an
evaluation computes for the same agent, turn and seed, so it calls the evaluation's own
`model.evaluate.sample_and_score` with the evaluation's kit (recognizers, motion reference) and
held-out turns. Bad input (an unknown or foreign checkpoint, a corrupt upload) is raised as
`PlaygroundError` with a sentence the app shows as is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError

from alignment.reward import RewardModel, check_backbone
from model.agent import AgentModel, SamplingParams
from model.evaluate import Kit, Turn, heldout_turn, sample_and_score
from model.media import MediaError, decode_audio, write_mp4
from model.respond import AgentResponse, ResponseConfig
from model.rollout_store import rollout_to_bytes
from model.zoo import load_agent


class PlaygroundError(ValueError):
    """Input the playground cannot use; the message is meant for the engineer, not a traceback."""


@dataclass
class Sample:
    """One agent's answer: the response, its behaviour metrics and, with a reward model, its rewards."""

    response: AgentResponse
    metrics: dict[str, float]
    transcripts: dict[str, str]
    rewards: dict[str, float] | None = None


def sample(agent: AgentModel, turn: Turn, params: SamplingParams, kit: Kit, response: ResponseConfig,
           progress: Callable[[float], None] | None = None) -> Sample:
    """Sample `agent`'s answer to `turn` under `params` and score it: `model.evaluate.sample_and_score`."""
    try:
        scored = sample_and_score(agent, turn, params.audio_temperature, params.seed, kit,
                                  visual_temperature=params.visual_temperature, top_k=params.top_k,
                                  diffusion_steps=params.diffusion_steps, response=response, progress=progress)
    except ValueError as exc:
        raise PlaygroundError(f"The agent cannot answer this turn: {exc}") from exc
    return Sample(scored.response, scored.metrics, scored.transcripts)


def reward_scores(reward: RewardModel, response: AgentResponse) -> dict[str, float]:
    """The reward model's score per head ("overall" first) for one sampled response."""
    with torch.inference_mode():
        scores = reward.scores(response.rollout.to_batch())
    return {name: float(value[0]) for name, value in scores.items()}


def check_root(path: str, roots: Sequence[Path]) -> Path:
    """`path` resolved, refused unless it lies under one of the allowed roots."""
    resolved = Path(path).expanduser().resolve()
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "none"
        raise PlaygroundError(f"{path!r} is not under an allowed checkpoint root ({allowed}); "
                              "start the playground with --root DIR to allow another")
    return resolved


def open_agent(checkpoint: str, roots: Sequence[Path], kit: Kit) -> AgentModel:
    """The agent for "default" or a checkpoint directory under `roots`, checked against the shipped codec."""
    checkpoint = checkpoint.strip()
    if not checkpoint:
        raise PlaygroundError("Choose a checkpoint: 'default' or a checkpoint directory.")
    path = checkpoint if checkpoint == "default" else str(check_root(checkpoint, roots))
    if path != "default" and not (Path(path) / "config.json").is_file():
        raise PlaygroundError(f"No agent checkpoint at {checkpoint!r}: the directory needs config.json and "
                              "model.safetensors.")
    try:
        agent = load_agent(path)
        agent.config.check_codec(kit.codec)
    except (ValueError, KeyError, TypeError, OSError, SafetensorError, RuntimeError) as exc:
        raise PlaygroundError(f"Cannot use the agent checkpoint {checkpoint!r}: {exc}") from exc
    return agent


def open_reward(checkpoint: str, roots: Sequence[Path], agent_configs: Sequence) -> RewardModel:
    """A reward model directory under `roots` whose backbone fits every chosen agent."""
    path = check_root(checkpoint.strip(), roots)
    try:
        reward = RewardModel.from_pretrained(path)
    except (ValueError, KeyError, TypeError, OSError, SafetensorError, RuntimeError) as exc:
        raise PlaygroundError(f"Cannot use the reward model {checkpoint!r}: {exc}") from exc
    for config in agent_configs:
        try:
            check_backbone(reward.config, config)
        except ValueError as exc:
            raise PlaygroundError(f"The reward model {checkpoint!r} does not fit a chosen agent: {exc}") from exc
    return reward


def uploaded_turn(path: str, kit: Kit, prompt: str, identity: int) -> Turn:
    """The human turn in an uploaded clip (its audio; a silent clip gives a second of silence)."""
    try:
        wave = decode_audio(path, kit.codec.sample_rate)
    except MediaError as exc:
        raise PlaygroundError(f"The uploaded clip cannot be read: {exc}") from exc
    if wave.size == 0:
        raise PlaygroundError("The uploaded clip has no audio samples.")
    return Turn(human_wave=wave, prompt=prompt, identity=identity)


def corpus_turn(index: int, kit: Kit) -> Turn:
    """Held-out corpus question `index`, as the evaluation samples it (`model.evaluate.heldout_turn`)."""
    return heldout_turn(index, kit.codec)


def save_sample(result: Sample, directory: Path) -> tuple[Path, Path]:
    """Write the sample's MP4 and its rollout (safetensors) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    video, rollout = directory / "response.mp4", directory / "rollout.safetensors"
    r = result.response
    write_mp4(video, r.frames, r.fps, r.audio, r.sample_rate)
    rollout.write_bytes(rollout_to_bytes(r.rollout))
    return video, rollout


def finite(value: float) -> str:
    """A metric for display: NaN means "does not apply"."""
    return "n/a" if math.isnan(value) else f"{value:.3f}"
