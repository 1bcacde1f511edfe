"""One reward-model run: checks before any rank starts (`preflight`), the per-rank training (`train`),
and the DeepSpeed launch of N ranks (`launch_command`).

`preflight` reads only small files (the snapshot's manifest and hashes, the checkpoints' config.json)
and raises `RunRefused` with a message for a person: an unreadable or modified snapshot, no usable
pair, a base that is not an agent checkpoint, a reward model whose backbone does not match it.
"""

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from alignment.curves import plot_curves
from alignment.metrics_log import MetricsLog, MetricsLogCallback
from alignment.reward.config import RewardConfig, RewardJobArguments
from alignment.reward.data import PairDataset, batch_to, load_exchange
from alignment.reward.model import (
    BackboneMismatch,
    RewardModel,
    check_backbone,
    pad_batches,
    read_agent_config,
    read_reward_dimensions,
    weights_sha256,
)
from alignment.snapshot import PreferencePair, Snapshot, SnapshotInvalid
from model.zoo import DEFAULT_AGENT_DIR


class RunRefused(ValueError):
    """A run that must not start; the message says why and what to fix."""


@dataclass
class Plan:
    snapshot: Snapshot
    base: Path
    train: list[PreferencePair]
    validation: list[PreferencePair]
    dimensions: tuple[str, ...]


def preflight(job: RewardJobArguments) -> Plan:
    try:
        snapshot = Snapshot.load(job.snapshot)
    except (SnapshotInvalid, OSError, ValueError) as exc:
        raise RunRefused(f"snapshot: {exc}") from exc
    try:
        base = DEFAULT_AGENT_DIR if job.base == "default" else Path(job.base)
        agent_config = read_agent_config(base)
    except (OSError, ValueError, TypeError) as exc:
        raise RunRefused(f"base checkpoint {job.base!r}: {exc}") from exc
    if job.init_reward is not None:
        try:
            check_backbone(job.init_reward, agent_config)
        except BackboneMismatch as exc:
            raise RunRefused(str(exc)) from exc
        except (OSError, ValueError) as exc:
            raise RunRefused(f"init_reward {job.init_reward!r}: {exc}") from exc
    if not snapshot.records:
        raise RunRefused(f"snapshot {snapshot.sha256[:12]} has no comparison: there is no pair to train on")
    train, validation = snapshot.split(job.validation_fraction, job.split_seed)
    if not train:
        raise RunRefused(f"snapshot {snapshot.sha256[:12]}: all {len(validation)} pairs fell in validation; "
                         "lower validation_fraction or add comparisons")
    if not validation:
        raise RunRefused(f"snapshot {snapshot.sha256[:12]}: no pair left for validation ({len(train)} pairs); "
                         "raise validation_fraction or add comparisons")
    if job.init_reward is not None:
        dimensions = read_reward_dimensions(job.init_reward)
    else:
        dimensions = snapshot.dimensions if job.per_dimension_heads else ()
    return Plan(snapshot=snapshot, base=base, train=train, validation=validation, dimensions=dimensions)


def train(job: RewardJobArguments, config: RewardConfig) -> dict:
    """Train on every rank; rank 0 normalises, saves the model with its card, and draws the curves."""
    from alignment.reward.trainer import AgentRewardTrainer

    plan = preflight(job)
    torch.manual_seed(config.seed)
    if job.init_reward is not None:
        model = RewardModel.from_pretrained(job.init_reward, agent=plan.base).train()
    else:
        model = RewardModel.from_agent(plan.base, plan.dimensions).train()
    heads = model.head_names
    trainer = AgentRewardTrainer(model, config, PairDataset(plan.train, heads), PairDataset(plan.validation, heads),
                                 callbacks=[MetricsLogCallback(job.out)])
    trainer.train()
    if trainer.last_eval_step != trainer.state.global_step:
        trainer.evaluate()  # the held-out figures of the final weights
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    summary = {key: value for key, value in trainer.last_eval.items() if "accuracy" in key or key.endswith("loss")}
    if trainer.is_world_process_zero():
        result = RewardModel(model.config, model.dimensions)
        result.load_state_dict({k: v.detach().cpu() for k, v in state.items()})
        result.eval()
        reference, description = _reference_pairs(plan, job)
        offsets = result.normalise(_reference_batches(reference, result, config.per_device_eval_batch_size))
        card = {
            "data": {"snapshot_sha256": plan.snapshot.sha256, "snapshot": str(Path(job.snapshot).resolve()),
                     "train_pairs": len(plan.train), "validation_pairs": len(plan.validation),
                     "split": f"by round, validation fraction {job.validation_fraction}, seed {job.split_seed}"},
            "base": {"checkpoint": str(plan.base), "weights_sha256": weights_sha256(plan.base)},
            "steps": trainer.state.global_step,
            "metrics": summary,
            "normalisation": {"reference": description, "offsets": offsets},
            "labels": "ties: target 0.5; both_bad / na: no loss on that head; overall trains the overall head",
            "ranks": trainer.args.world_size, "deepspeed": Path(config.deepspeed).name if config.deepspeed else None,
        }
        result.save_pretrained(job.out, card=card)
        MetricsLog(job.out).write(event="done", step=trainer.state.global_step, progress=1.0, output=job.out)
        plot_curves(job.out)
    return summary


def _reference_pairs(plan: Plan, job: RewardJobArguments) -> tuple[list[Path], str]:
    """The rollouts that define score 0: the reference variant's, else those sampled from the base checkpoint."""
    pairs = plan.train + plan.validation
    sides = [(p.chosen, p.chosen_variant, p.chosen_checkpoint) for p in pairs]
    sides += [(p.rejected, p.rejected_variant, p.rejected_checkpoint) for p in pairs]
    if job.reference_variant is not None:
        chosen = [path for path, variant, _ in sides if variant == job.reference_variant]
        if not chosen:
            raise RunRefused(f"reference variant {job.reference_variant} has no sample in the snapshot")
        return chosen, f"samples of variant {job.reference_variant} (n={len(chosen)})"
    base = {job.base, str(plan.base)}
    chosen = [path for path, _, checkpoint in sides if checkpoint in base]
    if chosen:
        return chosen, f"samples of the variants whose checkpoint is the base {job.base!r} (n={len(chosen)})"
    return [path for path, _, _ in sides], f"all samples of the snapshot (no variant uses the base; n={len(sides)})"


def _reference_batches(paths: list[Path], model: RewardModel, batch_size: int):
    device = next(model.parameters()).device
    for start in range(0, len(paths), batch_size):
        clips, lengths = pad_batches([load_exchange(p) for p in paths[start:start + batch_size]],
                                     model.config.special_token)
        yield batch_to(clips, device), lengths.to(device)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(argv: list[str], ranks: int) -> list[str]:
    """The `deepspeed` launcher command that runs this CLI on `ranks` processes of this machine."""
    launcher = Path(sys.executable).with_name("deepspeed")
    return [str(launcher) if launcher.exists() else "deepspeed", "--num_accelerators", str(ranks),
            "--master_port", str(free_port()), "--no_local_rank", "--module", "alignment.reward", *argv]


def under_launcher() -> bool:
    """True inside a rank started by the deepspeed (or torchrun) launcher."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ

