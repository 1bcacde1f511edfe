"""The reward model over G's backbone, its Bradley-Terry loss, and its training (see alignment.reward.model)."""

from alignment.reward.loss import HeadLoss, accuracy, pair_loss, preference_loss
from alignment.reward.model import (
    OVERALL,
    BackboneMismatch,
    RewardModel,
    check_backbone,
    pad_batches,
    read_reward_config,
)

__all__ = [
    "OVERALL", "BackboneMismatch", "HeadLoss", "RewardModel", "accuracy", "check_backbone", "pad_batches",
    "pair_loss", "preference_loss", "read_reward_config",
]
