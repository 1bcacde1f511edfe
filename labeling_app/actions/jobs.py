"""Training jobs from the site: the typed job configuration, its validation, create and cancel.

A job's ``config`` holds only the fields of `RewardJobConfig` / `PPOJobConfig`, validated here
(the job form and the API both go through `parse_config`); ``workers.jobs`` turns them into the
command-line flags of ``python -m alignment.reward`` / ``python -m alignment.ppo``. Paths never come
from the user: the snapshot, the base variant's checkpoint and the reward job's output are rows,
and every checkpoint must lie under ``HER_CHECKPOINT_ROOTS`` (or be the shipped "default").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction

from labeling_app import lifecycle
from labeling_app.actions import Refused
from labeling_app.models import AgentVariant, PreferenceSnapshot, TrainingJob
from labeling_app.queue import send_task_on_commit


class ConfigError(ValueError):
    """A job configuration field that is missing, of the wrong type or out of range."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class RewardJobConfig:
    """Hyper-parameters of a reward-model job (the flags of the same names of alignment.reward)."""

    learning_rate: float = 1e-4
    num_train_epochs: float = 3.0
    per_device_train_batch_size: int = 8
    validation_fraction: float = 0.2
    per_dimension_heads: bool = True
    ranks: int = 1
    zero_stage: int = 2
    seed: int = 0


@dataclass(frozen=True)
class PPOJobConfig:
    """Hyper-parameters of a PPO job (the flags of the same names of alignment.ppo)."""

    total_steps: int = 20
    batch_size: int = 4
    mini_batch_size: int = 2
    learning_rate: float = 1e-5
    kl_coef: float = 0.01
    episode_frames: int = 48
    ranks: int = 1
    seed: int = 0


# (low, high) inclusive bounds of each numeric field; a field not named here only has a type.
BOUNDS: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-8, 1.0), "num_train_epochs": (0.01, 100.0), "per_device_train_batch_size": (1, 512),
    "validation_fraction": (0.01, 0.9), "ranks": (1, 2), "zero_stage": (0, 3), "seed": (0, 2**31 - 1),
    "total_steps": (1, 100_000), "batch_size": (1, 512), "mini_batch_size": (1, 512), "kl_coef": (0.0, 10.0),
    "episode_frames": (8, 480),
}
CONFIGS = {TrainingJob.Kind.REWARD: RewardJobConfig, TrainingJob.Kind.PPO: PPOJobConfig}


def parse_config(kind: str, data: dict) -> RewardJobConfig | PPOJobConfig:
    """The typed configuration of ``data`` (defaults for what is absent); `ConfigError` names the
    first bad field. Unknown fields are refused, so no flag can be smuggled to the trainer."""
    if kind not in CONFIGS:
        raise ConfigError("kind", f"must be one of {sorted(CONFIGS)}, got {kind!r}")
    cls = CONFIGS[kind]
    if not isinstance(data, dict):
        raise ConfigError("config", "must be a JSON object")
    known = {f.name: f for f in fields(cls)}
    for name in data:
        if name not in known:
            raise ConfigError(name, f"is not a setting of a {kind} job (known: {', '.join(known)})")
    values = {}
    for name, value in data.items():
        kind_of = known[name].type
        if kind_of == "bool":
            if not isinstance(value, bool):
                raise ConfigError(name, f"must be true or false, got {value!r}")
        elif kind_of == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(name, f"must be a whole number, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(name, f"must be a number, got {value!r}")
        else:
            value = float(value)
        if name in BOUNDS and not BOUNDS[name][0] <= value <= BOUNDS[name][1]:
            raise ConfigError(name, f"must lie in {BOUNDS[name][0]:g}..{BOUNDS[name][1]:g}, got {value!r}")
        values[name] = value
    config = cls(**values)
    if isinstance(config, RewardJobConfig) and config.zero_stage == 1:
        raise ConfigError("zero_stage", "must be 0 (no DeepSpeed), 2 or 3")
    if isinstance(config, RewardJobConfig) and config.zero_stage == 0 and config.ranks > 1:
        raise ConfigError("ranks", "more than one rank needs DeepSpeed (zero_stage 2 or 3)")
    if isinstance(config, PPOJobConfig) and config.batch_size % config.mini_batch_size:
        raise ConfigError("mini_batch_size", f"must divide batch_size ({config.batch_size})")
    return config


def checkpoint_allowed(checkpoint: str) -> bool:
    """True for the shipped "default" agent or a directory under one of ``HER_CHECKPOINT_ROOTS``
    (resolved, so ``..`` and links cannot leave them)."""
    if checkpoint == "default":
        return True
    path = Path(checkpoint).resolve()
    return any(path.is_relative_to(Path(root).resolve()) for root in settings.HER_CHECKPOINT_ROOTS)


def usable_pairs(snapshot: PreferenceSnapshot) -> int:
    """Comparisons of the snapshot that can train a head: a preferred side overall or on a dimension
    (a tie, both-bad or not-applicable everywhere teaches nothing)."""
    with default_storage.open(f"{snapshot.path}/manifest.jsonl", "rb") as f:
        lines = [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]
    return sum(1 for line in lines if line["overall"] in ("a", "b")
               or any(label in ("a", "b") for label in line["labels"].values()))


def create_job(kind: str, config: RewardJobConfig | PPOJobConfig, user, *, snapshot: PreferenceSnapshot | None,
               base_variant: AgentVariant, reward_job: TrainingJob | None = None) -> TrainingJob:
    """Check what the job would train on and queue it (its message is sent on commit).

    Refused (400), with nothing queued: a reward job without a snapshot or with no usable pair, a
    PPO job without a succeeded reward job, a checkpoint outside the allowed roots.
    """
    if not checkpoint_allowed(base_variant.checkpoint):
        raise Refused(f"The checkpoint of variant {base_variant.name} ({base_variant.checkpoint}) lies outside "
                      "the allowed checkpoint roots.", status=400)
    if kind == TrainingJob.Kind.REWARD:
        if snapshot is None:
            raise Refused("A reward job needs a snapshot.", status=400)
        if not usable_pairs(snapshot):
            raise Refused(f"Snapshot {snapshot.name} has no usable pair: every comparison is a tie, both bad "
                          "or not applicable, so there is nothing to learn from.", status=400)
    elif kind == TrainingJob.Kind.PPO:
        if reward_job is None or reward_job.kind != TrainingJob.Kind.REWARD \
                or reward_job.status != TrainingJob.Status.SUCCEEDED:
            raise Refused("A PPO job needs a succeeded reward-model job.", status=400)
        if not checkpoint_allowed(reward_job.output_dir):
            raise Refused(f"The reward model {reward_job.output_dir} lies outside the allowed roots.", status=400)
    else:
        raise Refused(f"Jobs of kind {kind!r} cannot be started from the site.", status=400)
    with transaction.atomic():
        job = TrainingJob.objects.create(kind=kind, config=asdict(config), snapshot=snapshot,
                                         base_variant=base_variant, reward_job=reward_job, created_by=user)
        send_task_on_commit(lifecycle.JOBS.task, job.pk)
    return job


def cancel_job(job: TrainingJob) -> str:
    """Cancel a queued job at once or ask a running one's worker to stop; the status afterwards."""
    return lifecycle.request_cancel(lifecycle.JOBS, job.pk)
