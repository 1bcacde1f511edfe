"""A PPO run end to end: `preflight` (refuse bad input before any rank starts), `run_rank` (one rank's
work: load, train, save the policy with its card), and the `deepspeed` launcher command for N ranks.
"""

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from alignment.ppo.ppo_config import PPOConfig
from alignment.ppo.prompts import NoPrompts, Prompt, corpus_prompts, snapshot_prompts
from alignment.reward.model import BackboneMismatch, check_backbone, read_agent_config, weights_sha256
from model.agent import AgentConfig
from model.zoo import DEFAULT_AGENT_DIR, load_agent

POLICY_DIR = "policy"


class RunRefused(ValueError):
    """The run cannot start: the message says why (exit status 2 on the command line)."""


@dataclass
class Plan:
    """What preflight found: the agent configuration and the prompts' source."""

    agent_config: AgentConfig
    prompts: list[Prompt] | None  # None: the corpus, generated on each rank
    prompt_source: str


def policy_config(policy: str) -> AgentConfig:
    """The configuration of a policy reference ("default" or a G checkpoint directory), weights unread."""
    if policy == "default":
        return read_agent_config(DEFAULT_AGENT_DIR) if (DEFAULT_AGENT_DIR / "config.json").is_file() \
            else AgentConfig.named("tiny")
    if not (Path(policy) / "config.json").is_file():
        raise RunRefused(f"policy {policy!r} is neither 'default' nor a G checkpoint directory (config.json missing)")
    return read_agent_config(policy)


def preflight(config: PPOConfig, load_prompts: bool = True) -> Plan:
    """Check the policy, the reward model and the prompts; raise RunRefused naming what is wrong."""
    agent_config = policy_config(config.policy)
    try:
        check_backbone(config.reward_model, agent_config)
    except BackboneMismatch as exc:
        raise RunRefused(f"reward model {config.reward_model} cannot score policy {config.policy}: {exc}") from exc
    except (ValueError, OSError) as exc:
        raise RunRefused(f"reward model {config.reward_model!r}: {exc}") from exc
    if config.snapshot is None:
        from model.codec import load_codec

        codec = load_codec("default")
        if (codec.num_codebooks, codec.codebook_size) != (agent_config.num_codebooks, agent_config.codebook_size):
            raise RunRefused(f"the synthetic corpus speaks the default codec ({codec.num_codebooks} x {codec.codebook_size} "
                             f"codes); policy {config.policy} reads {agent_config.num_codebooks} x "
                             f"{agent_config.codebook_size}: give it a --snapshot")
        return Plan(agent_config, None, f"corpus seeds {config.corpus_seed}-{config.corpus_seed + config.corpus_prompts - 1}")
    try:
        prompts = snapshot_prompts(config.snapshot, agent_config, config.episode_frames) if load_prompts else None
    except (NoPrompts, ValueError, OSError) as exc:
        raise RunRefused(f"snapshot {config.snapshot}: {exc}") from exc
    return Plan(agent_config, prompts, f"snapshot {config.snapshot}")


def run_rank(config: PPOConfig) -> Path | None:
    """One rank of the run (torch.distributed already set up by the launcher, or a single process)."""
    import deepspeed
    import torch.distributed as dist

    from alignment.metrics_log import MetricsLog
    from alignment.ppo.curves import plot_ppo_curves
    from alignment.ppo.trainer import PPOTrainer
    from alignment.reward.model import RewardModel

    if "WORLD_SIZE" not in os.environ:  # one rank without the launcher: a process group of one
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(free_port()))
    deepspeed.init_distributed(dist_backend="gloo")
    world = dist.get_world_size()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    plan = preflight(config)
    prompts = plan.prompts or corpus_prompts(range(config.corpus_seed, config.corpus_seed + config.corpus_prompts),
                                             plan.agent_config, config.episode_frames)
    policy, reference = load_agent(config.policy), load_agent(config.policy)
    reward = RewardModel.from_pretrained(config.reward_model)
    trainer = PPOTrainer(config, policy, reference, reward, prompts)
    history = trainer.train()
    if dist.get_rank() != 0:
        dist.barrier()
        return None
    out = Path(config.output_dir) / POLICY_DIR
    trainer.actor.module.save_pretrained(out, card=policy_card(config, plan, history, world))
    MetricsLog(config.output_dir).write(event="done", step=config.total_steps, progress=1.0, output=str(out))
    plot_ppo_curves(config.output_dir)
    dist.barrier()
    return out


def policy_card(config: PPOConfig, plan: Plan, history: list[dict], world: int) -> dict:
    """What the trained policy's card says: its parent, the reward model, the prompts, the run."""
    parent = str(DEFAULT_AGENT_DIR) if config.policy == "default" else config.policy
    snapshot = None
    if config.snapshot is not None:
        from alignment.snapshot import Snapshot

        snapshot = {"path": config.snapshot, "sha256": Snapshot.load(config.snapshot, verify_files=False).sha256}
    return {
        "kind": "ppo-policy",
        "parent": config.policy,
        "parent_weights_sha256": weights_sha256(parent) if (Path(parent) / "model.safetensors").is_file() else None,
        "reward_model": {"path": config.reward_model, "weights_sha256": weights_sha256(config.reward_model)},
        "snapshot": snapshot,
        "data": f"PPO on {plan.prompt_source}, {config.episode_frames}-frame episodes",
        "steps": config.total_steps,
        "ranks": world,
        "metrics": {k: round(v, 6) for k, v in (history[-1] if history else {}).items()},
        "training": config.to_dict(),
    }


def launch_command(argv: list[str], ranks: int) -> list[str]:
    """The `deepspeed` launcher command that runs this CLI on `ranks` processes of this machine."""
    launcher = Path(sys.executable).with_name("deepspeed")
    return [str(launcher) if launcher.exists() else "deepspeed", "--num_accelerators", str(ranks),
            "--master_port", str(free_port()), "--no_local_rank", "--module", "alignment.ppo", *argv]


def under_launcher() -> bool:
    """True inside a rank started by the deepspeed (or torchrun) launcher."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
