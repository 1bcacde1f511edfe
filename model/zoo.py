"""Resolve an agent variant's checkpoint reference to a loaded agent model.

"default" is the project's shipped agent, ``model/assets/agents/default``: the tiny
configuration trained by ``python -m model.train_default`` on the project's synthetic dialogue
corpus (``model.data.dialogue``). Were that directory missing (a trimmed checkout), the tiny
configuration is built deterministically (seed 0) so every worker still samples the same,
untrained agent. Anything else is a local checkpoint directory (config.json + model.safetensors).
"""

from pathlib import Path

import torch

from model.agent import AgentModel

DEFAULT_AGENT_DIR = Path(__file__).resolve().parent / "assets" / "agents" / "default"
DEFAULT_AGENT_SEED = 0  # fixes the built default's weights, identical on every machine


def load_agent(checkpoint: str) -> AgentModel:
    """A ready-to-sample agent for ``checkpoint`` ("default" or a checkpoint directory)."""
    if checkpoint == "default":
        if (DEFAULT_AGENT_DIR / "config.json").is_file():
            return AgentModel.from_pretrained(str(DEFAULT_AGENT_DIR)).eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(DEFAULT_AGENT_SEED)
            return AgentModel.from_pretrained("tiny").eval()
    path = Path(checkpoint)
    if not (path / "config.json").is_file():
        raise ValueError(
            f"agent checkpoint {checkpoint!r} is neither 'default' nor a directory with config.json "
            "and model.safetensors"
        )
    return AgentModel.from_pretrained(str(path)).eval()
