"""The Bradley-Terry preference loss with explicit ties and missing labels, and pairwise accuracy.

Each pair is oriented so that ``chosen`` won the overall verdict (an overall tie keeps the order the
annotator saw). Per head, a pair carries a target and a mask:

- target 1.0: chosen better on this head; 0.0: rejected better (a dimension may disagree with the
  overall verdict); loss -log sigmoid(+-(r_c - r_r)), the Bradley-Terry loss.
- target 0.5: a tie. The loss is the cross-entropy against 1/2, which is smallest when the two
  scores are equal; a tie says "as good as each other", so it should pull the scores together,
  not be thrown away. Ties are left out of accuracy (there is no right answer to count).
- mask False: "both bad" or "not applicable" on that dimension. Neither says which is better, so the
  pair contributes nothing to that head (it still trains the others). The overall verdict has no
  such values, so every pair trains the overall head.

A head's loss is the mean over its labelled pairs; the total is the mean over heads that have any
labelled pair in the batch, so the loss of an untrained model is about ln 2 however many heads.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

TIE_TARGET = 0.5


@dataclass
class HeadLoss:
    loss: torch.Tensor  # () mean over labelled pairs; 0 with no labelled pair
    labelled: torch.Tensor  # () number of labelled pairs (ties included)
    accuracy: torch.Tensor  # () over decisive pairs; NaN with none
    decisive: torch.Tensor  # () number of labelled, non-tie pairs


def pair_loss(chosen: torch.Tensor, rejected: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> HeadLoss:
    """One head's loss over (B,) scores; target in {0, 0.5, 1}, mask (B,) bool."""
    margin = chosen - rejected
    # BCE-with-logits of the margin: -t log s(m) - (1 - t) log s(-m); at t = 1 exactly -log s(m).
    per_pair = F.binary_cross_entropy_with_logits(margin, target.to(margin.dtype), reduction="none")
    weight = mask.to(margin.dtype)
    labelled = weight.sum()
    loss = (per_pair * weight).sum() / labelled.clamp(min=1)
    decisive_mask = mask & (target != TIE_TARGET)
    return HeadLoss(loss=loss, labelled=labelled, accuracy=accuracy(margin, target, decisive_mask),
                    decisive=decisive_mask.sum())


def accuracy(margin: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The fraction of decisive pairs ranked the right way; an exact tie of scores counts one half.

    Counting equal scores as half right makes accuracy(c, r) + accuracy(r, c) = 1 for any scores.
    """
    right = torch.where(target > TIE_TARGET, margin.sign(), -margin.sign())  # +1 right, -1 wrong, 0 equal
    right = (right + 1) / 2
    count = mask.sum()
    if count == 0:
        return torch.tensor(float("nan"), device=margin.device)
    return right[mask].sum() / count


def preference_loss(chosen: dict[str, torch.Tensor], rejected: dict[str, torch.Tensor],
                    targets: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
                    ) -> tuple[torch.Tensor, dict[str, HeadLoss]]:
    """The total loss and each head's part, for heads named in `targets`."""
    heads = {name: pair_loss(chosen[name], rejected[name], targets[name], masks[name]) for name in targets}
    active = [part.loss for part in heads.values() if part.labelled > 0]
    # A head without labels adds its loss, exactly 0 but part of the graph: its parameters get zero
    # gradients rather than none, so every DeepSpeed rank reduces the same set of gradients.
    idle = sum(part.loss for part in heads.values() if part.labelled == 0)
    total = (torch.stack(active).mean() if active else 0.0) + idle
    return total, heads
