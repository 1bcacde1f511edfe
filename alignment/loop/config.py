"""LoopConfig: every size and setting of one RLHF iteration, validated when the run starts.

The defaults finish in about an hour on 2 CPU cores; the flags of ``python -m alignment.loop``
(one per field) scale them up. Why these defaults (docs/loop/ has the runs they come from):

- The annotators' hidden preferences: each site dimension has a fixed utility (``JUDGED_BY``);
  the ``focus`` dimension weighs 1, the others ``OTHER_WEIGHT``, and the overall verdict (the
  reward model's ``overall`` head, the one PPO maximises) is their sum. A focus the parent
  already saturates cannot show a win (a tie counts half): the default agents listen almost
  perfectly (0.976-0.987 in the earlier runs), so the focus is identity, the agent speaking
  at its identity's pitch. It is judged by the pitch distance in semitones
  (``identity/voice_distance``, an octave weighing 1), not by ``identity/voice``, which scores every
  voice past an octave 0: in the run at 9151a28 most pairs of that score tied, the reward model's
  identity head learnt little and PPO's reward stayed flat. ``--focus listening`` or ``--focus
  speaking`` picks another; the report prints the parent's level on the focus's metrics.
- The reward-model and PPO jobs take the PPO experiment's settings (reward: lr 3e-4, 4 pairs per
  rank, 3 epochs; PPO: 32 steps, lr 4e-5, beta 0.01, 4 rollouts per rank, 2 ranks) on the first
  campaign's 64 pairs (the experiment's reward model reached 0.72 held-out accuracy on 48; 32 gave
  0.50 at 9151a28). Both first-campaign variants denoise in 10 steps (``diffusion_steps``), and PPO
  samples as its base variant, so the child does too. 4 steps cut the diffusion-step KL (146 nats
  against 388 in the run at 9151a28) but break the default agent: its motion explodes (Frechet ~2e4
  against ~1) and, fed back as its own visual input, makes it talk over 98% of the turns
  (docs/loop/report.md). PPO's episodes are
  96 frames (4 s from the turn's start): the reward model was trained on whole clips (the turn plus
  4 s), and the voice it should judge is the answer's, which 96 frames hold the start of for most
  held-out turns (questions: median 2.7 s, 90% under 4.7 s); every stored clip is at least that
  long, so no prompt is refused. Longer episodes cost PPO time in proportion.
- Power: the second campaign's win rate is a Wilson interval, which counts its votes as
  independent. Each vote is a different held-out question (the questions after the first
  campaign's, which neither the reward model nor PPO saw), answered by freshly sampled clips of
  both variants (a random seed per candidate) and judged once (overlap 1); what votes share is
  the annotator (4, each claiming items as it goes) and the 67 question/answer pairs the corpus
  voices. With 80 votes (ties aside) a true win rate of 0.65 clears 0.5 8 times in 10 and 0.7
  24 in 25; with the old 12 votes 0.7 clears it 1 time in 4. Overlap > 1 is left at 1: the votes
  on one question share its turn, so counting them as independent would narrow the interval
  beyond what the data support.
- "No other behaviour metric gets worse by more than a margin": ``WORSE_MARGINS`` gives each
  metric's better direction and margin in its own units; a metric fails when the child's mean
  paired difference to the parent is past the margin in the worse direction and its 95% interval
  excludes 0 (a change within noise is not "getting worse").
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from alignment.simulate import SimulatorConfig, Utility

# The site's dimension -> the metrics the simulated annotators judge it by, each with its weight (sign: better up or down).
JUDGED_BY = {
    "listening": {"turn/listening": 1.0, "turn/talked_over": -1.0},
    "speaking": {"turn/response_rate": 1.0, "lip_sync/correlation": 1.0},
    # The pitch error itself, an octave weighing as much as a whole listening score: the cliffed
    # identity/voice scores every voice past an octave 0, so two wrong voices tie and teach nothing.
    "identity": {"identity/voice_distance": -1 / 12},
}
OTHER_WEIGHT = 0.3  # the non-focus dimensions count, but a clear gap in the focus decides the overall verdict
# metric -> (+1 higher is better / -1 lower is better, how much worse the child may get in the metric's units).
# Graded shares and scores in [0, 1]: 0.05; the lip-sync correlation, in [-1, 1]: 0.1; per-turn yes/no rates:
# 0.1 (8 of 80 turns); seconds: 0.25 (a quarter of people's 0.2-1 s gap); the motion Frechet distance
# (~1.5 for the default): 0.25; the voice's distance from the identity's pitch: 0.6 semitones (0.05 of an octave).
# identity/voice_semitones is signed (0 is right); identity/voice and identity/voice_distance score its absolute value.
WORSE_MARGINS = {
    "turn/listening": (1, 0.05), "turn/talked_over": (-1, 0.1), "turn/response_rate": (1, 0.1),
    "turn/latency_s": (-1, 0.25), "lip_sync/correlation": (1, 0.1), "identity/voice": (1, 0.05),
    "identity/voice_distance": (-1, 0.6),
    "identity/body": (1, 0.05), "manipulation/grasp_success": (1, 0.1), "manipulation/unrequested_reach": (-1, 0.1),
    "intelligibility/wer_domain": (-1, 0.05), "intelligibility/wer_general": (-1, 0.05), "motion/frechet": (-1, 0.25),
}


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class LoopConfig:
    out: Path = field(metadata=_help("Output directory: state.json, report.md, plots, the site's var/ and logs."))
    focus: str = field(default="identity", metadata=_help(
        f"The dimension the simulated annotators care about most (weight 1, the others {OTHER_WEIGHT:g}): "
        f"{', '.join(JUDGED_BY)}."))
    rounds: int = field(default=64, metadata=_help(
        "Scenarios (held-out corpus questions 0 .. rounds - 1) of the first campaign: the reward model's pairs."))
    child_rounds: int = field(default=80, metadata=_help(
        "Scenarios of the second campaign (the child against its parent): the questions after the first "
        "campaign's, which neither the reward model nor PPO saw; each is one independent vote at overlap 1."))
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
    diffusion_steps: int = field(default=10, metadata=_help(
        "Denoising steps per video frame of both first-campaign variants; PPO samples as the parent does, and the "
        "child inherits it. Fewer break the default agent (4: motion Frechet ~2e4, talking over 98% of turns)."))
    reward_epochs: float = field(default=3.0, metadata=_help("Reward-model job: epochs."))
    reward_learning_rate: float = field(default=3e-4, metadata=_help("Reward-model job: learning rate."))
    reward_batch_size: int = field(default=4, metadata=_help("Reward-model job: pairs per rank per step."))
    reward_validation_fraction: float = field(default=0.2, metadata=_help(
        "Reward-model job: share of rounds held out (the split keeps a round on each side)."))
    ppo_steps: int = field(default=32, metadata=_help("PPO job: steps."))
    ppo_batch_size: int = field(default=4, metadata=_help("PPO job: rollouts per rank per step."))
    ppo_mini_batch_size: int = field(default=2, metadata=_help("PPO job: rollouts per rank per optimiser step."))
    ppo_learning_rate: float = field(default=4e-5, metadata=_help("PPO job: actor learning rate."))
    ppo_kl_coef: float = field(default=0.01, metadata=_help("PPO job: beta, the KL coefficient."))
    ppo_episode_frames: int = field(default=96, metadata=_help(
        "PPO job: video frames per rollout from the turn's start (at most the shortest stored clip: turn + 4 s)."))
    ranks: int = field(default=2, metadata=_help("DeepSpeed ranks of both jobs."))
    worker_concurrency: int = field(default=2, metadata=_help("Celery worker processes of the deployment."))
    port: int = field(default=0, metadata=_help("The site's port (0: a free one, kept in the state file)."))
    seed: int = field(default=0, metadata=_help("Seeds the annotators' noise and the jobs."))
    stage_timeout: float = field(default=3600.0, metadata=_help("Seconds any one wait may take before the run gives up."))

    def __post_init__(self) -> None:
        for name in ("rounds", "child_rounds", "overlap", "annotators", "parallel", "reward_batch_size", "ppo_steps",
                     "ppo_batch_size", "ppo_mini_batch_size", "ppo_episode_frames", "ranks", "worker_concurrency",
                     "diffusion_steps"):
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
        if self.focus not in JUDGED_BY:
            raise ValueError(f"focus must be one of {', '.join(JUDGED_BY)}, got {self.focus!r}")
        object.__setattr__(self, "out", Path(self.out).resolve())

    @property
    def utilities(self) -> dict[str, Utility]:
        """The site's dimension -> the hidden utility the simulated annotators judge it by."""
        return {name: Utility({metric: weight * (1.0 if name == self.focus else OTHER_WEIGHT)
                               for metric, weight in metrics.items()}) for name, metrics in JUDGED_BY.items()}

    def simulator(self, noisy: bool, biased: bool) -> SimulatorConfig:
        """The hidden preferences of one annotator: a pool of one, careful or noisy, leaning left or not."""
        return SimulatorConfig(dimensions=self.utilities, temperature=self.temperature * (self.noisy_factor if noisy else 1),
                               annotators=1, biased_share=1.0 if biased else 0.0, position_bias=self.position_bias)

    def as_dict(self) -> dict:
        return {f.name: (str(getattr(self, f.name)) if f.name == "out" else getattr(self, f.name)) for f in fields(self)}
