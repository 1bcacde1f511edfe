"""Fixtures for the alignment tests: a small agent checkpoint and snapshots of its real rollouts.

Rollouts are sampled from the `debug` agent (a few hundred thousand parameters) on random human
turns of different lengths, so pairs exercise padding; labels follow a known rule over the
rollouts so a test can tell right from wrong.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import torch

from alignment.snapshot import Snapshot, write_snapshot
from model.agent import AgentConfig, AgentModel, SamplingParams
from model.rollout_store import rollout_to_bytes

DIMENSIONS = ("speaking", "listening")


@pytest.fixture(scope="session")
def debug_agent_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("agent") / "debug"
    AgentModel(AgentConfig.named("debug")).save_pretrained(path, card={"data": "random init, tests"})
    return path


def visual_mean(rollout) -> float:
    """The rule the fixture's annotators follow: the agent's mean first visual channel."""
    return float(rollout.visual_tokens[..., 0].mean())


def build_snapshot(root: Path, agent_dir: Path, rounds: int, seed: int = 0, per_round: int = 1) -> Snapshot:
    """`rounds` human turns, two rollouts each (two variants), `per_round` comparisons of each pair.

    Overall and "speaking" prefer the higher `visual_mean`; "listening" is "na" on every other
    comparison and "tie" on every third, so masks and ties are exercised.
    """
    agent = AgentModel.from_pretrained(str(agent_dir))
    config = agent.config
    g = torch.Generator().manual_seed(seed)
    comparisons, rollouts = [], {}
    for i in range(rounds):
        frames = 4 + i % 3
        human = torch.randint(0, config.codebook_size, (config.num_codebooks, frames * config.audio_frames_per_video_frame),
                              generator=g)
        sides = []
        for variant in (1, 2):
            params = SamplingParams(visual_temperature=0.5 + variant * 0.5, diffusion_steps=3,
                                    seed=int(torch.randint(0, 2**31, (1,), generator=g)))
            rollout = agent.generate(frames, params, human_audio=human)
            candidate = str(uuid.UUID(int=int(torch.randint(0, 2**62, (1,), generator=g))))
            rollouts[candidate] = rollout_to_bytes(rollout)
            sides.append(({"candidate": candidate, "variant": variant, "variant_name": f"v{variant}",
                           "checkpoint": str(agent_dir) if variant == 1 else "other"}, visual_mean(rollout)))
        round_id = str(uuid.UUID(int=10**6 + i))
        for j in range(per_round):
            (a, va), (b, vb) = sides if (i + j) % 2 == 0 else sides[::-1]
            better = "a" if va > vb else "b"
            listening = "na" if i % 2 else ("tie" if i % 3 == 0 else better)
            comparisons.append({
                "comparison": str(uuid.UUID(int=2 * 10**6 + i * 10 + j)), "round": round_id, "scenario": 1,
                "campaign": "test", "annotator": j + 1, "a": a, "b": b,
                "labels": {"speaking": better, "listening": listening, "manipulation": "na", "identity": "na",
                           "qa_safety": "na"},
                "overall": better, "strength": 2, "confidence": 4, "submitted_at": "2026-01-01T00:00:00+00:00",
            })
    return write_snapshot(root, comparisons, rollouts, DIMENSIONS)


@pytest.fixture(scope="session")
def small_snapshot(tmp_path_factory, debug_agent_dir) -> Snapshot:
    return build_snapshot(tmp_path_factory.mktemp("snapshots"), debug_agent_dir, rounds=12, per_round=2)
