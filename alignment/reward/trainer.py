"""`AgentRewardTrainer`: TRL's RewardTrainer for G's exchanges, with per-dimension heads and explicit labels.

TRL's RewardTrainer assumes text: its constructor loads a tokenizer and tokenises the dataset. G's
exchanges are already tokens (rollouts), so the constructor goes straight to `transformers.Trainer`
and sets what TRL's methods rely on; the rest is TRL's: the activation-offloading training step,
the per-mode metrics dict averaged at log time, only rank 0 logging. `compute_loss` is TRL's loss
(-log sigmoid(r_c - r_r), chosen and rejected in one forward) generalised to several heads, ties
and masks (alignment.reward.loss); on plain decisive labels it equals TRL's exactly (tested).

Metrics (named with slashes, per mode): ``reward/loss``, ``reward/accuracy`` (overall head),
``reward/accuracy/<dimension>``, ``reward/margin``, ``reward/mean``. Accuracies are sums over the
logging window (correct / decisive pairs, gathered over ranks), not means of per-batch means.
"""

import contextlib
from collections import defaultdict

import torch
import trl
from transformers import Trainer

from alignment.reward.config import RewardConfig
from alignment.reward.data import PreferenceCollator, batch_to
from alignment.reward.loss import preference_loss
from alignment.reward.model import OVERALL, RewardModel


class AgentRewardTrainer(trl.RewardTrainer):
    """Trains a `RewardModel` on `PairDataset`s; see the module docstring for what differs from TRL."""

    def __init__(self, model: RewardModel, args: RewardConfig, train_dataset, eval_dataset=None, callbacks=None
                 ) -> None:
        Trainer.__init__(self, model=model, args=args, data_collator=PreferenceCollator(model.config.special_token),
                         train_dataset=train_dataset, eval_dataset=eval_dataset, callbacks=callbacks)
        self.can_return_loss = True
        self.label_names = []
        self.maybe_activation_offload_context = contextlib.nullcontext()
        # Per mode, per metric: [numerator, denominator] summed over the logging window.
        self._sums = {"train": defaultdict(lambda: [0.0, 0.0]), "eval": defaultdict(lambda: [0.0, 0.0])}
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        self.last_eval: dict[str, float] = {}
        self.last_eval_step = -1

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        heads = self.accelerator.unwrap_model(model).head_names
        clips = batch_to(inputs["clips"], self.args.device)
        values = model(clips, inputs["lengths"].to(self.args.device))  # (2B, heads)
        chosen, rejected = values.chunk(2)
        targets, masks = inputs["targets"].to(values.device), inputs["masks"].to(values.device)
        per_head = {name: (chosen[:, i], rejected[:, i], targets[:, i], masks[:, i]) for i, name in enumerate(heads)}
        loss, parts = preference_loss({n: v[0] for n, v in per_head.items()}, {n: v[1] for n, v in per_head.items()},
                                      {n: v[2] for n, v in per_head.items()}, {n: v[3] for n, v in per_head.items()})
        with torch.no_grad():
            sums = {"reward/margin": ((chosen[:, 0] - rejected[:, 0]).sum(), chosen.shape[0]),
                    "reward/mean": (values[:, 0].sum(), values.shape[0])}
            for name, part in parts.items():
                key = "reward/accuracy" if name == OVERALL else f"reward/accuracy/{name}"
                correct = torch.nan_to_num(part.accuracy) * part.decisive
                sums[key] = (correct, part.decisive)
            numbers = torch.tensor([[float(a), float(b)] for a, b in sums.values()], device=values.device)
            numbers = self.accelerator.reduce(numbers, reduction="sum")
            for key, (numerator, denominator) in zip(sums, numbers.tolist()):
                self._sums[mode][key][0] += numerator
                self._sums[mode][key][1] += denominator
        return (loss, {"values": values}) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        for key, (numerator, denominator) in self._sums[mode].items():
            if denominator > 0:
                # Into `logs` itself, as TRL does, so `evaluate()` returns the accuracies too.
                logs[f"eval_{key}" if mode == "eval" else key] = numerator / denominator
        self._sums[mode].clear()
        named = {}
        for key, value in logs.items():
            if key.startswith("eval_"):
                named[f"eval/{key[5:]}"] = value
            elif key == "epoch":
                named[key] = value
            else:  # Trainer's end-of-run summary (train_loss, train_runtime...) stays under train/
                named[f"train/{key}"] = value
        if any(key.startswith("eval/") for key in named):
            self.last_eval = {k: v for k, v in named.items() if k.startswith("eval/")}
            self.last_eval_step = self.state.global_step
        Trainer.log(self, named, start_time)
