"""Typed configuration of a reward-model run: what to train on (`RewardJobArguments`) and how (`RewardConfig`).

Both are dataclasses with ``help`` metadata, parsed by `transformers.HfArgumentParser`, so every
field is a CLI flag (``python -m alignment.reward --help``) and the site's job form validates the
same fields (alignment.reward.jobspec).
"""

from dataclasses import dataclass, field
from pathlib import Path

import trl

DEEPSPEED_CONFIGS = Path(__file__).parent / "deepspeed"


@dataclass
class RewardJobArguments:
    """The data, the starting checkpoint, where the result goes and how many ranks run it."""

    snapshot: str = field(metadata={"help": "Snapshot directory (manifest.jsonl + rollouts)."})
    base: str = field(metadata={"help": "Agent checkpoint directory (or 'default') whose backbone the reward model starts from."})
    out: str = field(metadata={"help": "Output directory of the reward model."})
    init_reward: str | None = field(default=None, metadata={
        "help": "Continue from this reward model instead of a new head; refused unless its backbone matches --base."})
    per_dimension_heads: bool = field(default=True, metadata={"help": "Add one head per dimension of the snapshot."})
    validation_fraction: float = field(default=0.2, metadata={"help": "Share of rounds held out for validation."})
    split_seed: int = field(default=0, metadata={"help": "Seed of the by-round split."})
    ranks: int = field(default=1, metadata={"help": "DeepSpeed ranks (processes) to launch."})
    zero_stage: int = field(default=2, metadata={"help": "DeepSpeed ZeRO stage: 2 (default) or 3; 0 runs without DeepSpeed."})
    reference_variant: int | None = field(default=None, metadata={
        "help": "Variant id whose samples define score 0 (default: the variants whose checkpoint is --base, else all)."})

    def __post_init__(self) -> None:
        if not 1 <= self.ranks <= 64:
            raise ValueError(f"ranks must lie in 1..64, got {self.ranks}")
        if self.zero_stage not in (0, 2, 3):
            raise ValueError(f"zero_stage must be 0, 2 or 3, got {self.zero_stage}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction}")

    @property
    def deepspeed_config(self) -> str | None:
        return None if self.zero_stage == 0 else str(DEEPSPEED_CONFIGS / f"zero{self.zero_stage}.json")


@dataclass
class RewardConfig(trl.RewardConfig):
    """TRL's RewardConfig with the defaults of G's reward model on CPU or GPU.

    Unlike TRL's defaults: no gradient checkpointing (G's backbone is short), fp32 unless asked, no
    intermediate checkpoints (the run writes one safetensors model at the end), losses only in
    evaluation (accuracy is computed in the loss), and unused columns kept (examples are tensors).
    """

    output_dir: str | None = field(default=None, metadata={"help": "Set from --out."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak AdamW learning rate."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Passes over the training pairs."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Pairs per rank per step."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Pairs per rank per evaluation step."})
    warmup_steps: float = field(default=0.1, metadata={"help": "Warm-up steps (a fraction < 1 of all steps)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    logging_steps: float = field(default=1, metadata={"help": "Log metrics every this many steps."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: 'no', 'steps' or 'epoch'."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations in backward."})
    bf16: bool | None = field(default=False, metadata={"help": "Train in bfloat16 (GPU)."})
    save_strategy: str = field(default="no", metadata={"help": "Intermediate checkpoints ('no': only the final model)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep every example field."})
    prediction_loss_only: bool = field(default=True, metadata={"help": "Evaluation returns losses only."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Data-loading worker processes per rank."})
    use_cpu: bool = field(default=False, metadata={"help": "Train on CPU even when an accelerator exists."})
    seed: int = field(default=0, metadata={"help": "Seed of the head init and data order."})
