"""PPOConfig: every setting of a PPO run, with help text, so `python -m alignment.ppo --help` documents them.

Names follow TRL's 0.x `PPOConfig` where the idea is the same (kl_coef, kl_estimator, cliprange,
cliprange_value, vf_coef, gamma, lam, whiten_rewards, num_ppo_epochs, mini_batch_size); what the
agent adds (diffusion steps, frames, sampling temperatures) has its own names.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEEPSPEED_CONFIGS = Path(__file__).resolve().parent / "deepspeed"


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class PPOConfig:
    """A KL-penalised PPO run: what is trained, on what, and how."""

    # --- what ------------------------------------------------------------------------------------
    output_dir: str = field(metadata=_help("Directory of the run: checkpoints/, the trained policy in policy/, metrics.jsonl."))
    reward_model: str = field(metadata=_help("Reward model checkpoint directory (alignment.reward); it must sit on the policy's backbone."))
    policy: str = field(default="default", metadata=_help("Initial policy and frozen reference: 'default' or a G checkpoint directory."))
    snapshot: str | None = field(default=None, metadata=_help("Preference snapshot whose human turns are the prompts; none: the synthetic corpus."))
    corpus_prompts: int = field(default=16, metadata=_help("Human turns taken from the synthetic corpus (seeds corpus_seed ..) when no snapshot is given."))
    corpus_seed: int = field(default=10_000, metadata=_help("First corpus seed of the prompts; the default agent trained on seeds 0-99."))
    episode_frames: int = field(default=48, metadata=_help("Video frames per rollout: the human's turn from its start, then silence; every rollout of a run has this length."))
    # --- how long --------------------------------------------------------------------------------
    total_steps: int = field(default=20, metadata=_help("PPO steps: each samples batch_size rollouts per rank, scores them and learns on them."))
    batch_size: int = field(default=4, metadata=_help("Rollouts per rank per PPO step."))
    mini_batch_size: int = field(default=2, metadata=_help("Rollouts per rank per optimiser step; must divide batch_size."))
    num_ppo_epochs: int = field(default=2, metadata=_help("Passes over each step's rollouts."))
    # --- sampling (the policy's variant settings) ------------------------------------------------
    audio_temperature: float = field(default=1.0, metadata=_help("Audio sampling temperature; log-probs divide the logits by it."))
    visual_temperature: float = field(default=1.0, metadata=_help("Diffusion noise temperature; step log-densities use it."))
    top_k: int | None = field(default=None, metadata=_help("Audio top-k cut for sampling; ratios and KL use the full distribution."))
    diffusion_steps: int = field(default=10, metadata=_help("Denoising steps per frame; every stochastic step is an action."))
    # --- objective -------------------------------------------------------------------------------
    kl_coef: float = field(default=0.01, metadata=_help("beta: reward = RM score - beta * KL(pi || pi_ref) per step."))
    kl_controller: str = field(default="fixed", metadata=_help("'fixed' beta, or 'adaptive' towards target_kl (Ziegler et al.)."))
    target_kl: float = field(default=6.0, metadata=_help("Adaptive controller: wanted KL per rollout (nats)."))
    kl_horizon: int = field(default=10_000, metadata=_help("Adaptive controller: rollouts over which beta moves by at most 20%."))
    kl_estimator: str = field(default="k1", metadata=_help("Audio token KL in the reward: 'k1' (log-ratio, unbiased) or 'k3' (non-negative)."))
    gamma: float = field(default=1.0, metadata=_help("Discount per frame."))
    lam: float = field(default=0.95, metadata=_help("GAE lambda."))
    whiten_rewards: bool = field(default=False, metadata=_help("Whiten the shaped rewards (keeping their mean) before GAE."))
    cliprange: float = field(default=0.2, metadata=_help("Clip range of audio token ratios."))
    cliprange_diffusion: float = field(default=0.05, metadata=_help(
        "Clip range of diffusion-step ratios; tighter than tokens, as in DDPO: a step's density spans a whole visual token."))
    cliprange_value: float = field(default=0.2, metadata=_help("Clip range of the value update."))
    vf_coef: float = field(default=0.1, metadata=_help("Value loss weight (the critic has its own engine; this scales its loss)."))
    diffusion_coef: float = field(default=1.0, metadata=_help("Weight of the diffusion-step surrogate beside the token surrogate."))
    diffusion_skip_noisiest: int = field(default=1, metadata=_help(
        "Noisiest stochastic denoising steps left out of PPO's diffusion actions, surrogate and KL penalty (DDPO also "
        "trains a subset of timesteps). At the first step from pure noise the cosine schedule multiplies the head's "
        "noise error by ~2e4 in x0, so that step's Gaussian jumps under any update of the backbone (KL ~100 per "
        "rollout after one 1e-5 step); its KL is still logged as ppo/kl_diffusion_noisiest."))
    # --- optimisation ----------------------------------------------------------------------------
    learning_rate: float = field(default=1e-5, metadata=_help("Actor AdamW learning rate."))
    diffusion_learning_rate: float = field(default=1e-6, metadata=_help(
        "Actor learning rate of the diffusion head, below the rest: one step's density spans a whole visual token."))
    critic_learning_rate: float = field(default=1e-4, metadata=_help("Critic AdamW learning rate."))
    max_grad_norm: float = field(default=1.0, metadata=_help("Gradient clipping of both engines."))
    deepspeed: str = field(default="zero2", metadata=_help(
        "A DeepSpeed config shipped in alignment/ppo/deepspeed/ (zero2, zero3); optimiser and batch sizes are filled in from this config."))
    ranks: int = field(default=1, metadata=_help("DeepSpeed ranks (processes on this machine); more than 1 goes through the deepspeed launcher."))
    seed: int = field(default=0, metadata=_help("Seeds sampling (per rank and rollout) and minibatch order."))
    # --- bookkeeping -----------------------------------------------------------------------------
    save_steps: int = field(default=5, metadata=_help("Checkpoint every this many PPO steps (and at the end)."))
    save_total_limit: int = field(default=2, metadata=_help("Checkpoints kept; older ones are deleted."))
    resume: bool = field(default=True, metadata=_help("Resume from the newest checkpoint in output_dir when there is one."))
    progress: bool = field(default=True, metadata=_help("Show a tqdm progress bar (rank 0)."))

    def __post_init__(self) -> None:
        positive = ("episode_frames", "total_steps", "batch_size", "mini_batch_size", "num_ppo_epochs", "corpus_prompts",
                    "ranks", "save_steps", "save_total_limit")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.diffusion_skip_noisiest < 0 or self.diffusion_skip_noisiest >= self.diffusion_steps - 1:
            raise ValueError(f"diffusion_skip_noisiest must lie in [0, diffusion_steps - 1), got {self.diffusion_skip_noisiest}")
        if self.batch_size % self.mini_batch_size:
            raise ValueError(f"mini_batch_size {self.mini_batch_size} must divide batch_size {self.batch_size}")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")
        if self.kl_controller not in ("fixed", "adaptive"):
            raise ValueError(f"kl_controller must be 'fixed' or 'adaptive', got {self.kl_controller!r}")
        if self.kl_estimator not in ("k1", "k3"):
            raise ValueError(f"kl_estimator must be 'k1' or 'k3', got {self.kl_estimator!r}")
        if not (0 <= self.gamma <= 1 and 0 <= self.lam <= 1):
            raise ValueError(f"gamma and lam must lie in [0, 1], got {self.gamma}, {self.lam}")
        for name in ("cliprange", "cliprange_diffusion", "cliprange_value", "learning_rate", "diffusion_learning_rate",
                     "critic_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.deepspeed not in deepspeed_config_names():
            raise ValueError(f"deepspeed must name a shipped config {deepspeed_config_names()}, got {self.deepspeed!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def deepspeed_config(self, learning_rate: float) -> dict:
        """The shipped DeepSpeed JSON with this run's batch sizes, optimiser and clipping filled in."""
        config = json.loads((DEEPSPEED_CONFIGS / f"{self.deepspeed}.json").read_text())
        config.update(
            train_micro_batch_size_per_gpu=self.mini_batch_size, gradient_accumulation_steps=1,
            gradient_clipping=self.max_grad_norm,
            optimizer={"type": "AdamW", "params": {"lr": learning_rate, "betas": [0.9, 0.999], "eps": 1e-8,
                                                   "weight_decay": 0.0, "torch_adam": True}},
        )
        return config


def deepspeed_config_names() -> list[str]:
    return sorted(path.stem for path in DEEPSPEED_CONFIGS.glob("*.json"))
