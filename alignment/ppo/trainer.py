"""PPOTrainer: KL-penalised PPO of the agent G on DeepSpeed, through audio tokens and diffusion-head steps.

One PPO step on every rank (the structure of TRL 0.x's PPOTrainer and OpenRLHF's PPO actor/critic):

1. rollout: the actor samples `batch_size` human turns through a StreamingSession;
2. scoring: in the minibatches of the first epoch, the actor (old log-probs), the frozen reference,
   the critic (values) and the reward model (one score per exchange) read the rollouts; KL per
   frame = audio log-ratio (k1 or k3) summed over codebooks and the frame's R steps, filler
   excluded, + the closed-form Gaussian KL of every trained stochastic denoising step (DPOK; the
   noisiest `diffusion_skip_noisiest` steps are left out, see PPOConfig); rewards =
   score at the last frame - beta * KL per frame; GAE; advantages whitened;
3. learning: `num_ppo_epochs` passes of clipped token and diffusion-step surrogates (a clip range
   each) on the actor's engine and a clipped value loss on the critic's, one optimiser step per
   minibatch.

Because the old log-probs are computed on exactly the first epoch's minibatches, the first
minibatch's ratios are exactly 1 (and the KL exactly 0 while actor == reference): the trainer
records both as `first_minibatch`. Dropout is off in every model; log-probs use logits /
temperature (alignment.ppo.scoring).

Actor and critic are DeepSpeed engines (ZeRO-2, alignment/ppo/deepspeed/zero2.json); the reference
and the reward model are DeepSpeed inference engines (`deepspeed.init_inference`, which runs on the
CPU accelerator too). Not understood yet: through the engines the KL of the very first step is
~1e-6 per rollout rather than exactly 0 (the module-level test in test_ppo_scoring finds exactly 0). Metrics are averaged over ranks; rank 0 writes them (alignment.metrics_log)
and the checkpoints.

Checkpoints (``OUT/checkpoints/step-NNNNNN/``), all safetensors or JSON, never pickles: the actor
as a G checkpoint, the critic, each rank's AdamW moments of its ZeRO partition, and
``trainer_state.json`` (step, beta, world size), written last and renamed into place, so a
directory that exists is complete. A run killed at any point resumes from its newest checkpoint
and continues exactly as it would have (sampling seeds and minibatch orders depend only on the
step).
"""

import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

import deepspeed
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from alignment.metrics_log import MetricsLog
from alignment.ppo.core import (
    clipped_policy_loss,
    clipped_value_loss,
    explained_variance,
    gae,
    gaussian_kl,
    kl_k1,
    kl_k3,
    masked_mean,
    shape_rewards,
    whiten,
)
from alignment.ppo.kl_control import make_kl_controller
from alignment.ppo.ppo_config import PPOConfig
from alignment.ppo.prompts import Prompt
from alignment.ppo.rollouts import rollout_seed, sample_rollouts
from alignment.ppo.scoring import RolloutBatch, evaluate, per_frame
from alignment.ppo.value_model import ValueModel
from alignment.reward.model import OVERALL, RewardModel
from model.agent import AgentModel, SamplingParams

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
TIMERS = ("rollout", "scoring", "learning")


def disable_dropout(module: torch.nn.Module) -> None:
    """Dropout off: PPO's ratios and the reference's log-probs must not depend on a random mask."""
    for sub in module.modules():
        if isinstance(sub, torch.nn.Dropout):
            sub.p = 0.0
        config = getattr(sub, "config", None)
        if config is not None and hasattr(config, "attention_dropout"):
            config.attention_dropout = 0.0


class PPOTrainer:
    """Runs `config.total_steps` PPO steps on this rank; see the module docstring."""

    def __init__(self, config: PPOConfig, policy: AgentModel, reference: AgentModel, reward: RewardModel,
                 prompts: list[Prompt], card: dict | None = None) -> None:
        self.config = config
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.prompts = prompts
        self.card = card or {}
        self.output_dir = Path(config.output_dir)
        self.params = SamplingParams(audio_temperature=config.audio_temperature,
                                     visual_temperature=config.visual_temperature, top_k=config.top_k,
                                     diffusion_steps=config.diffusion_steps, seed=config.seed)
        self.kl_controller = make_kl_controller(config.kl_controller, config.kl_coef, config.target_kl, config.kl_horizon)
        critic = ValueModel.from_reward_model(reward)
        for model in (policy, reference, reward, critic):
            disable_dropout(model)
            model.eval()  # never train(): eval mode keeps every model deterministic; gradients still flow
        reference.requires_grad_(False)
        reward.requires_grad_(False)

        self.start_step, resume_state = 0, None
        checkpoint = latest_checkpoint(self.output_dir) if config.resume else None
        if checkpoint is not None:
            resume_state = json.loads((checkpoint / STATE_FILE).read_text())
            policy.load_state_dict(AgentModel.from_pretrained(str(checkpoint / "policy")).state_dict())
            critic.load_weights(checkpoint / "critic")
            self.kl_controller.load_state_dict(resume_state["kl_controller"])
            self.start_step = resume_state["step"]

        head = set(policy.diffusion.parameters())
        groups = [{"params": [p for p in policy.parameters() if p not in head]},
                  {"params": list(policy.diffusion.parameters()), "lr": config.diffusion_learning_rate}]
        self.actor, *_ = deepspeed.initialize(model=policy, model_parameters=groups,
                                              config=config.deepspeed_config(config.learning_rate))
        self.critic, *_ = deepspeed.initialize(model=critic, model_parameters=list(critic.parameters()),
                                               config=config.deepspeed_config(config.critic_learning_rate))
        self.reference = deepspeed.init_inference(reference, dtype=torch.float32)
        self.reward = deepspeed.init_inference(reward, dtype=torch.float32)
        if checkpoint is not None:
            if resume_state["world_size"] == self.world:
                load_optimizer_state(self.actor, checkpoint / f"optimizer-actor-rank{self.rank}.safetensors")
                load_optimizer_state(self.critic, checkpoint / f"optimizer-critic-rank{self.rank}.safetensors")
            elif self.rank == 0:
                # ZeRO partitions the moments by rank: another world size cannot reuse them.
                print(f"resuming on {self.world} ranks from a {resume_state['world_size']}-rank checkpoint: "
                      "the AdamW moments restart", flush=True)
        self.log = MetricsLog(self.output_dir) if self.rank == 0 else None
        self.first_minibatch: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    # --- the loop --------------------------------------------------------------------------------

    def train(self) -> list[dict[str, float]]:
        """Run from the start (or resumed) step to `total_steps`; returns every step's metrics."""
        c = self.config
        if self.rank == 0 and self.start_step:
            print(f"resumed from step {self.start_step} ({self.output_dir / CHECKPOINTS})", flush=True)
        bar = tqdm(total=c.total_steps, initial=self.start_step, desc="ppo", unit="step",
                   disable=not (c.progress and self.rank == 0))
        for step in range(self.start_step, c.total_steps):
            metrics = self.step(step)
            self.history.append(metrics)
            if self.log is not None:
                self.log.metrics(step + 1, (step + 1) / c.total_steps, metrics)
            bar.set_postfix(reward=f"{metrics['ppo/reward']:.3f}", kl=f"{metrics['ppo/kl']:.3f}")
            bar.update()
            if (step + 1) % c.save_steps == 0 or step + 1 == c.total_steps:
                self.save_checkpoint(step + 1)
        bar.close()
        return self.history

    def step(self, step: int) -> dict[str, float]:
        c = self.config
        timers = {}
        started = time.perf_counter()
        per_rank = c.batch_size
        prompts = [self.prompts[((step * self.world + self.rank) * per_rank + i) % len(self.prompts)]
                   for i in range(per_rank)]
        seeds = [rollout_seed(c.seed, step, self.rank, i, per_rank, self.world) for i in range(per_rank)]
        batch = RolloutBatch.from_rollouts(sample_rollouts(self.actor.module, prompts, self.params,
                                                           c.episode_frames, seeds))
        timers["rollout"] = time.perf_counter() - started

        started = time.perf_counter()
        generator = torch.Generator().manual_seed(c.seed * 7919 + step)
        orders = [torch.randperm(per_rank, generator=generator) for _ in range(c.num_ppo_epochs)]
        scored = self.score(batch, orders[0].split(c.mini_batch_size))
        beta = self.kl_controller.value
        rewards = shape_rewards(scored["scores"], scored["kl"].clone(), beta)
        if c.whiten_rewards:
            rewards = whiten(rewards, shift_mean=False)
        advantages, returns = gae(rewards, scored["values"], c.gamma, c.lam)
        advantages = whiten(advantages)
        timers["scoring"] = time.perf_counter() - started

        started = time.perf_counter()
        stats = defaultdict(list)
        minibatches = [index for order in orders for index in order.split(c.mini_batch_size)]
        for n, index in enumerate(minibatches):
            self.learn(batch.select(index), scored, advantages[index], returns[index], index, stats, first=n == 0)
        timers["learning"] = time.perf_counter() - started

        kl_total = scored["kl"].sum(1)  # (B,) KL per rollout
        metrics = {
            "ppo/reward": scored["scores"].mean().item(),
            "ppo/kl": kl_total.mean().item(),
            "ppo/kl_audio": scored["kl_audio"].sum(1).mean().item(),
            "ppo/kl_diffusion": scored["kl_diffusion"].sum(1).mean().item(),
            "ppo/kl_diffusion_noisiest": scored["kl_noisiest"].sum(1).mean().item(),
            "ppo/non_score_reward": (-beta * kl_total).mean().item(),
            "ppo/rlhf_reward": (scored["scores"] - beta * kl_total).mean().item(),
            "ppo/return_mean": returns.mean().item(),
            "ppo/value_mean": scored["values"].mean().item(),
            "ppo/explained_variance": explained_variance(scored["values"], returns).item(),
            "ppo/logprob_recorded_gap": scored["recorded_gap"],
            **{f"ppo/first_minibatch/{name}": value for name, value in self.first_minibatch.items()},
            **{name: sum(values) / len(values) for name, values in stats.items()},
            **{f"time/{name}": seconds for name, seconds in timers.items()},
        }
        metrics = self.mean_over_ranks(metrics)
        self.kl_controller.update(metrics["ppo/kl"], per_rank * self.world)
        metrics["ppo/beta"] = beta
        return metrics

    @torch.no_grad()
    def score(self, batch: RolloutBatch, minibatches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Old log-probs, values, reference KL per frame and reward-model scores, minibatch by minibatch."""
        c = self.config
        b, t = batch.batch_size, batch.num_frames
        r = self.actor.module.config.audio_frames_per_video_frame
        out = {"old_audio": torch.zeros_like(batch.recorded_audio), "old_visual": torch.zeros_like(batch.recorded_visual),
               "values": torch.zeros(b, t), "kl_audio": torch.zeros(b, t), "kl_diffusion": torch.zeros(b, t),
               "kl_noisiest": torch.zeros(b, t),
               "scores": torch.zeros(b)}
        gap = 0.0
        estimator = kl_k1 if c.kl_estimator == "k1" else kl_k3
        for index in minibatches:
            sub = batch.select(index)
            old = evaluate(self.actor.module, sub, with_entropy=False, forward=self.actor)
            ref = evaluate(self.reference.module, sub, with_entropy=False, forward=self.reference)
            audio_kl = estimator(old.audio_log_probs, ref.audio_log_probs) * sub.sampled
            visual_kl = gaussian_kl(old.step_mean, old.step_log_var, ref.step_mean, ref.step_log_var)  # (b, T, n, L2)
            skip = c.diffusion_skip_noisiest
            out["kl_audio"][index], out["kl_diffusion"][index] = per_frame(audio_kl, visual_kl[:, :, skip:], r)
            out["kl_noisiest"][index] = visual_kl[:, :, :skip].flatten(2).sum(-1)
            out["old_audio"][index], out["old_visual"][index] = old.audio_log_probs, old.visual_log_probs
            out["values"][index] = self.critic(sub.inputs)
            out["scores"][index] = self.reward(sub.inputs)[:, self.reward.module.head_names.index(OVERALL)]
            gap = max(gap, (old.audio_log_probs - sub.recorded_audio).abs().max().item())
        out["kl"] = out["kl_audio"] + out["kl_diffusion"]
        out["recorded_gap"] = gap
        return out

    def learn(self, sub: RolloutBatch, scored: dict, advantages: torch.Tensor, returns: torch.Tensor,
              index: torch.Tensor, stats: dict, first: bool) -> None:
        """One optimiser step of the actor and of the critic on minibatch `sub`."""
        c = self.config
        k, r = sub.tokens.shape[1], self.actor.module.config.audio_frames_per_video_frame
        b, t = advantages.shape
        new = evaluate(self.actor.module, sub, forward=self.actor)
        token_log_ratio = new.audio_log_probs - scored["old_audio"][index]  # (b, K, S)
        step_log_ratio = new.visual_log_probs - scored["old_visual"][index]  # (b, T, n, L2)
        token_advantages = advantages[:, None, :, None].expand(b, k, t, r).reshape(b, k, t * r)
        token_loss, token_clipfrac = clipped_policy_loss(token_log_ratio, token_advantages, c.cliprange, sub.sampled)
        trained_steps = step_log_ratio[:, :, c.diffusion_skip_noisiest:]  # (b, T, n - skip, L2)
        step_loss, step_clipfrac = clipped_policy_loss(trained_steps, advantages[:, :, None, None],
                                                       c.cliprange_diffusion)
        loss = token_loss + c.diffusion_coef * step_loss
        self.actor.backward(loss)
        self.actor.step()

        values = self.critic(sub.inputs)
        value_loss, value_clipfrac = clipped_value_loss(values, scored["values"][index], returns, c.cliprange_value)
        self.critic.backward(c.vf_coef * value_loss)
        self.critic.step()

        with torch.no_grad():
            token_ratio = token_log_ratio.exp()
            if first:
                self.first_minibatch = {
                    "token_ratio_max_deviation": (token_ratio - 1)[sub.sampled].abs().max().item(),
                    "step_ratio_max_deviation": (step_log_ratio.exp() - 1).abs().max().item(),
                    "kl": scored["kl"][index].abs().max().item(),
                }
            approx_kl = 0.5 * (masked_mean(token_log_ratio ** 2, sub.sampled) + (trained_steps ** 2).mean())
            stats["ppo/policy_loss"].append(loss.item())
            stats["ppo/policy_loss_tokens"].append(token_loss.item())
            stats["ppo/policy_loss_diffusion"].append(step_loss.item())
            stats["ppo/value_loss"].append(value_loss.item())
            stats["ppo/clipfrac_tokens"].append(token_clipfrac.item())
            stats["ppo/clipfrac_diffusion"].append(step_clipfrac.item())
            stats["ppo/clipfrac_value"].append(value_clipfrac.item())
            stats["ppo/approx_kl"].append(approx_kl.item())
            stats["ppo/ratio_mean"].append(masked_mean(token_ratio, sub.sampled).item())
            stats["ppo/ratio_mean_diffusion"].append(trained_steps.exp().mean().item())
            stats["ppo/entropy"].append(masked_mean(new.audio_entropy, sub.sampled).item())

    def mean_over_ranks(self, metrics: dict[str, float]) -> dict[str, float]:
        names = sorted(metrics)
        values = torch.tensor([metrics[name] for name in names], dtype=torch.float64)
        if self.world > 1:
            dist.all_reduce(values)
            values /= self.world
        return dict(zip(names, values.tolist()))

    # --- checkpoints -----------------------------------------------------------------------------

    def save_checkpoint(self, step: int) -> Path:
        """Write OUT/checkpoints/step-NNNNNN (see the module docstring); keeps `save_total_limit` of them."""
        root = self.output_dir / CHECKPOINTS
        final, staging = root / f"step-{step:06d}", root / f"step-{step:06d}.partial"
        if self.rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        dist.barrier()
        save_optimizer_state(self.actor, staging / f"optimizer-actor-rank{self.rank}.safetensors")
        save_optimizer_state(self.critic, staging / f"optimizer-critic-rank{self.rank}.safetensors")
        if self.rank == 0:
            self.actor.module.save_pretrained(staging / "policy", card={"kind": "ppo-checkpoint", "steps": step})
            self.critic.module.save_pretrained(staging / "critic")
        dist.barrier()  # every rank's moments are on disk before the state file marks the directory complete
        if self.rank == 0:
            state = {"step": step, "world_size": self.world, "kl_controller": self.kl_controller.state_dict(),
                     "config": self.config.to_dict()}
            (staging / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
            for old in sorted(root.glob("step-*[0-9]"))[:-self.config.save_total_limit]:
                shutil.rmtree(old, ignore_errors=True)
        dist.barrier()
        return final


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run (one with its state file), or None."""
    complete = [p for p in (Path(output_dir) / CHECKPOINTS).glob("step-*[0-9]") if (p / STATE_FILE).is_file()]
    return max(complete, key=lambda p: int(p.name.split("-")[1]), default=None)


def _partitions(engine) -> list[torch.Tensor]:
    """The fp32 parameter tensors this rank's optimizer updates (its ZeRO partition, or all of them)."""
    optimizer = engine.optimizer
    if hasattr(optimizer, "single_partition_of_fp32_groups"):  # ZeRO-1/2
        return list(optimizer.single_partition_of_fp32_groups)
    return [p for group in optimizer.param_groups for p in group["params"]]


def _base_optimizer(engine) -> torch.optim.Optimizer:
    return getattr(engine.optimizer, "optimizer", engine.optimizer)


def save_optimizer_state(engine, path: Path) -> None:
    """This rank's AdamW moments and step counts as safetensors (no pickled optimizer state)."""
    base, tensors = _base_optimizer(engine), {}
    for i, param in enumerate(_partitions(engine)):
        for name, value in base.state.get(param, {}).items():
            tensors[f"{i}.{name}"] = torch.as_tensor(value).detach().clone().contiguous()
    save_file(tensors, str(path))


def load_optimizer_state(engine, path: Path) -> None:
    """Put the moments `save_optimizer_state` wrote back into this rank's optimizer."""
    tensors = load_file(str(path))
    base = _base_optimizer(engine)
    for i, param in enumerate(_partitions(engine)):
        entries = {key.split(".", 1)[1]: value for key, value in tensors.items() if key.split(".", 1)[0] == str(i)}
        if entries:
            if entries.get("exp_avg", param).shape != param.shape:
                raise ValueError(f"{path}: optimizer moments of partition {i} do not fit this run's parameters")
            base.state[param] = entries
