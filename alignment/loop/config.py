"""LoopConfig: every size and setting of one RLHF iteration, validated when the run starts.

The defaults finish well under an hour on 2 CPU cores; the flags of ``python -m alignment.loop``
(one per field) scale them up. The simulated annotators' hidden preferences are fixed here:
listening matters most (the site's "listening" dimension: silent while the human speaks, not
talking over them), speaking (answering, lips following the voice) and identity (the identity's
voice) less.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from alignment.simulate import SimulatorConfig, Utility

# The site's dimension -> the hidden utility the simulated annotators judge it by.
UTILITIES = {
    "listening": Utility({"turn/listening": 1.0, "turn/talked_over": -1.0}),
    "speaking": Utility({"turn/response_rate": 0.3, "lip_sync/correlation": 0.3}),
    "identity": Utility({"identity/voice": 0.3}),
}
MOST_IMPORTANT = "listening"  # the largest weight in the overall utility (the sum of the dimensions')


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class LoopConfig:
    out: Path = field(metadata=_help("Output directory: state.json, report.md, plots, the site's var/ and logs."))
    rounds: int = field(default=12, metadata=_help("Scenarios (held-out corpus questions) per campaign."))
    overlap: int = field(default=1, metadata=_help("Annotators who each record and judge every scenario."))
    annotators: int = field(default=4, metadata=_help("Simulated annotators per campaign (fresh ones for the second)."))
    parallel: int = field(default=3, metadata=_help("Annotators working at the same time (threads of this process)."))
    noisy_share: float = field(default=0.2, metadata=_help("Share of annotators whose noise is noisy_factor times larger."))
    noisy_factor: float = field(default=5.0, metadata=_help("How much noisier a noisy annotator is."))
    biased_share: float = field(default=0.2, metadata=_help("Share of annotators leaning to the left clip."))
    position_bias: float = field(default=1.0, metadata=_help("A biased annotator's lean to the left clip, logits."))
    temperature: float = field(default=0.05, metadata=_help("Bradley-Terry noise of a careful annotator, utility units."))
    other_temperature: float = field(default=0.7, metadata=_help(
        "Audio and visual temperature of the first campaign's second variant (the first samples at 1.0)."))
    reward_epochs: float = field(default=3.0, metadata=_help("Reward-model job: epochs."))
    reward_learning_rate: float = field(default=1e-4, metadata=_help("Reward-model job: learning rate."))
    reward_batch_size: int = field(default=8, metadata=_help("Reward-model job: pairs per rank per step."))
    reward_validation_fraction: float = field(default=0.2, metadata=_help(
        "Reward-model job: share of rounds held out (the split keeps a round on each side)."))
    ppo_steps: int = field(default=10, metadata=_help("PPO job: steps."))
    ppo_batch_size: int = field(default=4, metadata=_help("PPO job: rollouts per step."))
    ppo_mini_batch_size: int = field(default=2, metadata=_help("PPO job: rollouts per optimiser step."))
    ppo_learning_rate: float = field(default=1e-5, metadata=_help("PPO job: actor learning rate."))
    ppo_kl_coef: float = field(default=0.01, metadata=_help("PPO job: beta, the KL coefficient."))
    ppo_episode_frames: int = field(default=48, metadata=_help("PPO job: video frames per rollout."))
    ranks: int = field(default=1, metadata=_help("DeepSpeed ranks of both jobs."))
    worker_concurrency: int = field(default=2, metadata=_help("Celery worker processes of the deployment."))
    port: int = field(default=0, metadata=_help("The site's port (0: a free one, kept in the state file)."))
    seed: int = field(default=0, metadata=_help("Seeds the annotators' noise and the jobs."))
    stage_timeout: float = field(default=3600.0, metadata=_help("Seconds any one wait may take before the run gives up."))

    def __post_init__(self) -> None:
        for name in ("rounds", "overlap", "annotators", "parallel", "reward_batch_size", "ppo_steps", "ppo_batch_size",
                     "ppo_mini_batch_size", "ppo_episode_frames", "ranks", "worker_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.overlap > min(20, self.annotators):
            raise ValueError(f"overlap ({self.overlap}) needs at least as many annotators, and at most 20")
        if not 0.01 <= self.reward_validation_fraction <= 0.9:
            raise ValueError(f"reward_validation_fraction must lie in [0.01, 0.9], got {self.reward_validation_fraction}")
        for name in ("noisy_share", "biased_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in ("noisy_factor", "temperature", "other_temperature", "reward_epochs", "reward_learning_rate",
                     "ppo_learning_rate", "stage_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.ppo_batch_size % self.ppo_mini_batch_size:
            raise ValueError("ppo_mini_batch_size must divide ppo_batch_size")
        if self.ppo_kl_coef < 0 or not 0 <= self.port < 65536 or self.ranks > 2:
            raise ValueError("ppo_kl_coef must be >= 0, port in 0..65535 and ranks 1 or 2")
        object.__setattr__(self, "out", Path(self.out).resolve())

    def simulator(self, noisy: bool, biased: bool) -> SimulatorConfig:
        """The hidden preferences of one annotator: a pool of one, careful or noisy, leaning left or not."""
        return SimulatorConfig(dimensions=UTILITIES, temperature=self.temperature * (self.noisy_factor if noisy else 1),
                               annotators=1, biased_share=1.0 if biased else 0.0, position_bias=self.position_bias)

    def as_dict(self) -> dict:
        return {f.name: (str(getattr(self, f.name)) if f.name == "out" else getattr(self, f.name)) for f in fields(self)}
