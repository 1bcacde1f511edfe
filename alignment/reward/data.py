"""Preference pairs as training examples: rollouts read from a snapshot, targets and masks per head."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from alignment.reward.loss import TIE_TARGET
from alignment.reward.model import OVERALL, pad_batches
from alignment.snapshot import PreferencePair
from model.agent import AgentBatch
from model.rollout_store import rollout_from_bytes

# What a label (relative to chosen, see alignment.snapshot) asks of a head: (target, trains it?).
LABEL_TARGETS = {"chosen": (1.0, True), "rejected": (0.0, True), "tie": (TIE_TARGET, True),
                 "both_bad": (0.0, False), "na": (0.0, False)}


def head_targets(pair: PreferencePair, head_names: Sequence[str]) -> tuple[list[float], list[bool]]:
    """(targets, masks) in `head_names` order; "overall" reads the overall verdict."""
    targets, masks = [], []
    for name in head_names:
        label = pair.overall if name == OVERALL else pair.labels.get(name, "na")
        target, used = LABEL_TARGETS[label]
        targets.append(target)
        masks.append(used)
    return targets, masks


def load_exchange(path) -> AgentBatch:
    """One clip as G reads it: the human's turn and the agent's response, a batch of one."""
    with open(path, "rb") as f:
        return rollout_from_bytes(f.read()).to_batch()


class PairDataset(Dataset):
    """Pairs of a snapshot as dicts {"chosen", "rejected": AgentBatch, "targets", "masks": lists per head}."""

    def __init__(self, pairs: Sequence[PreferencePair], head_names: Sequence[str]) -> None:
        self.pairs, self.head_names = list(pairs), tuple(head_names)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        chosen, rejected = load_exchange(pair.chosen), load_exchange(pair.rejected)
        if chosen.num_frames != rejected.num_frames or not _same(chosen.human_audio, rejected.human_audio):
            raise ValueError(f"comparison {pair.comparison}: its two rollouts answer different human turns")
        targets, masks = head_targets(pair, self.head_names)
        return {"chosen": chosen, "rejected": rejected, "targets": targets, "masks": masks}


@dataclass
class PreferenceCollator:
    """Stacks pairs into one padded batch of 2B clips, chosen first. The batch layout::

        clips    AgentBatch (2B, T_max, ...)  rows 0..B-1 chosen, B..2B-1 rejected, right-padded
        lengths  (2B,) long                   each clip's frame count (its score is read there)
        targets  (B, heads) float             1 chosen better, 0 rejected better, 0.5 tie
        masks    (B, heads) bool              False: both bad / not applicable, no loss on that head
    """

    special_token: int

    def __call__(self, examples: list[dict]) -> dict:
        clips, lengths = pad_batches([e["chosen"] for e in examples] + [e["rejected"] for e in examples],
                                     self.special_token)
        return {"clips": clips, "lengths": lengths,
                "targets": torch.tensor([e["targets"] for e in examples], dtype=torch.float32),
                "masks": torch.tensor([e["masks"] for e in examples], dtype=torch.bool)}


def batch_to(batch: AgentBatch, device: torch.device) -> AgentBatch:
    """An AgentBatch with every tensor on `device`."""
    def move(x):
        return None if x is None else x.to(device)

    return AgentBatch(agent_audio=move(batch.agent_audio), agent_visual=move(batch.agent_visual),
                      human_audio=move(batch.human_audio), human_visual=move(batch.human_visual),
                      prompt=move(batch.prompt), trajectory=move(batch.trajectory), identity=move(batch.identity),
                      present={name: mask.to(device) for name, mask in batch.present.items()})


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
