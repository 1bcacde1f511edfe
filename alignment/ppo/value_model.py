"""The critic: the reward model's trunk with its overall head read at every frame (OpenRLHF's critic-from-RM).

V_t is read at frame t's control slot, the position that has seen everything before frame t's
actions (the human's frames < t, the agent's own audio and visuals of frames < t) and none of them,
so it is the value of the state in which the agent acts at frame t.
"""

from pathlib import Path

import torch
from torch import nn

from alignment.reward.model import OVERALL, RewardModel
from model.agent import AgentBatch, AgentConfig, AgentModel
from model.agent.checkpoint import read_checkpoint, write_checkpoint


class ValueModel(nn.Module):
    """V(state before frame t) for t < T: `forward(batch)` -> (B, T)."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = AgentModel(config)
        self.trunk.audio_head = None  # the critic never samples
        self.trunk.diffusion = None
        self.value_head = nn.Linear(config.hidden_size, 1)
        self.trunk.backbone.config.attention_dropout = 0.0

    @classmethod
    def from_reward_model(cls, reward: RewardModel) -> "ValueModel":
        """Trunk and head from the reward model (its overall head, offset folded into the bias)."""
        model = cls(reward.config)
        model.trunk.load_state_dict(reward.trunk.state_dict())
        head = reward.heads[OVERALL]
        with torch.no_grad():
            model.value_head.weight.copy_(head.weight)
            model.value_head.bias.copy_(head.bias + reward.offsets[0])
        return model

    def forward(self, batch: AgentBatch) -> torch.Tensor:
        hidden = self.trunk.hidden_states(batch)[:, :, 0]  # (B, T, H): the control slots
        return self.value_head(hidden).squeeze(-1)

    def save_pretrained(self, path: str | Path) -> Path:
        return write_checkpoint(path, self.config.to_dict(), self.state_dict(), {"kind": "ppo-critic"})

    def load_weights(self, path: str | Path) -> None:
        _, state, _ = read_checkpoint(path)
        self.load_state_dict(state)
