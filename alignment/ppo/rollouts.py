"""Sampling PPO's rollouts: the policy answers human turns through a StreamingSession, frame by frame.

The session records every sample's log-probability as it is drawn (`Rollout`); PPO recomputes
them in one forward (alignment.ppo.scoring) and keeps the recorded ones as a check.
"""

import dataclasses

import torch

from alignment.ppo.prompts import Prompt
from model.agent import AgentModel, Rollout, SamplingParams


@torch.no_grad()
def sample_rollout(policy: AgentModel, prompt: Prompt, params: SamplingParams, frames: int) -> Rollout:
    """The policy's response to `prompt` over `frames` video frames: the human's frame i - 1 feeds frame i."""
    r = policy.config.audio_frames_per_video_frame
    session = policy.session(params, prompt=prompt.prompt, identity=prompt.identity)
    for i in range(frames):
        session.step(human_audio=None if i == 0 else prompt.human_audio[:, (i - 1) * r: i * r])
    return session.rollout()


def rollout_seed(seed: int, step: int, rank: int, index: int, per_rank: int, world: int) -> int:
    """A distinct sampling seed for every (step, rank, rollout) of a run, the same after a resume."""
    return seed * 1_000_003 + (step * world + rank) * per_rank + index


def sample_rollouts(policy: AgentModel, prompts: list[Prompt], params: SamplingParams, frames: int,
                    seeds: list[int]) -> list[Rollout]:
    was_training = policy.training
    policy.eval()
    try:
        return [sample_rollout(policy, prompt, dataclasses.replace(params, seed=seed), frames)
                for prompt, seed in zip(prompts, seeds)]
    finally:
        policy.train(was_training)
