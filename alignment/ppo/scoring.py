"""What PPO reads from a model for a batch of rollouts: action log-probs, entropies, diffusion-step Gaussians.

One full forward of G per batch (`AgentModel.forward`), then:

- audio: the log-probability of every sampled token under the full distribution at the sampling
  temperature (logits / temperature, no top-k: finite under every model, so ratios and the KL stay
  finite), 0 at the delay pattern's filler; and the entropy of that distribution;
- visuals: for every stochastic denoising step x_t -> x_{t-1} of every visual token, the Gaussian
  (mean, log-variance at the sampling temperature) the model gives x_{t-1} from the recorded x_t,
  and the log-density of the recorded x_{t-1}. Policy and reference are evaluated on the same x_t,
  so their per-step KL is a closed-form Gaussian KL (DPOK).

For an agent with the inner monologue (AgentConfig.text_vocab > 0) the text token of frame i is an
action too, drawn from the same backbone call as the frame's first audio step: its log-probability
(and entropy) is added to that step's codebook-0 token, at (k = 0, s = iR), so the clipped token
ratio there is the joint ratio of the pair and the audio KL includes the text's (`fold_text`).

Per-frame sums (`per_frame`) turn these into the T steps GAE runs over.
"""

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from alignment.ppo.core import categorical_entropy, gaussian_log_density
from model.agent import AgentBatch, AgentModel, AgentOutput, Rollout, SamplingParams
from model.agent.sampling import audio_log_distribution, pick_log_probs, text_log_distribution


@dataclass
class RolloutBatch:
    """B rollouts of T frames stacked for scoring (all sampled with `params` but for the seed).

    Layout::

        inputs        AgentBatch (B, T, ...)    what the agent saw and produced
        tokens        (B, K, S) long            delayed audio tokens, S = T * R
        sampled       (B, K, S) bool            positions that hold a sampled code (not filler)
        chains        (B, T, steps + 1, L2, D)  denoising chains from noise to the visual tokens
        recorded_audio, recorded_visual         the log-probs the sampler recorded, (B, K, S) and
                                                (B, T, steps - 1, L2); the text's folded into the audio
    """

    inputs: AgentBatch
    tokens: torch.Tensor
    sampled: torch.Tensor
    chains: torch.Tensor
    recorded_audio: torch.Tensor
    recorded_visual: torch.Tensor
    params: SamplingParams

    @classmethod
    def from_rollouts(cls, rollouts: Sequence[Rollout]) -> "RolloutBatch":
        if not rollouts:
            raise ValueError("no rollouts to batch")
        params = rollouts[0].params
        if any(dataclasses.replace(r.params, seed=params.seed) != params for r in rollouts):
            raise ValueError("rollouts of one PPO batch must share their sampling parameters (all but the seed)")
        return cls(
            inputs=AgentBatch.concat([r.to_batch() for r in rollouts]),
            tokens=torch.stack([r.audio_tokens for r in rollouts]),
            sampled=torch.stack([r.audio_sampled for r in rollouts]),
            chains=torch.stack([r.visual_chain for r in rollouts]),
            recorded_audio=torch.stack([r.audio_log_probs if r.text_tokens is None else
                                        fold_text(r.audio_log_probs[None], r.text_log_probs[None])[0]
                                        for r in rollouts]),
            recorded_visual=torch.stack([r.visual_log_probs for r in rollouts]),
            params=params,
        )

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    @property
    def num_frames(self) -> int:
        return self.chains.shape[1]

    def select(self, index: torch.Tensor) -> "RolloutBatch":
        """The rollouts at `index` (a minibatch)."""
        def pick(x):
            return None if x is None else x[index]

        inputs = AgentBatch(**{f.name: pick(getattr(self.inputs, f.name)) for f in dataclasses.fields(AgentBatch)
                               if f.name != "present"},
                            present={name: mask[index] for name, mask in self.inputs.present.items()})
        return RolloutBatch(inputs, self.tokens[index], self.sampled[index], self.chains[index],
                            self.recorded_audio[index], self.recorded_visual[index], self.params)


@dataclass
class PolicyEvaluation:
    """One model's view of a RolloutBatch (shapes as in RolloutBatch)."""

    audio_log_probs: torch.Tensor  # (B, K, S), 0 at filler
    audio_entropy: torch.Tensor  # (B, K, S), 0 at filler
    step_mean: torch.Tensor  # (B, T, steps - 1, L2, D)
    step_log_var: torch.Tensor  # (B, T, steps - 1, L2, D)
    visual_log_probs: torch.Tensor  # (B, T, steps - 1, L2)


def full_distribution(params: SamplingParams) -> SamplingParams:
    """The sampling parameters without the top-k cut: the distribution PPO's ratios and KL use."""
    return dataclasses.replace(params, top_k=None)


def evaluate(model: AgentModel, batch: RolloutBatch, with_entropy: bool = True,
             forward: Callable[[AgentBatch], AgentOutput] | None = None) -> PolicyEvaluation:
    """Score `batch` under `model` with one forward (differentiable when grad is enabled).

    `forward` runs the backbone pass instead of `model` itself: the model's DeepSpeed engine.
    """
    out = (forward or model)(batch.inputs)
    quiet = None if model.audio_quiet is None else model.audio_quiet[:, None]  # (K, 1, V)
    log_dist = audio_log_distribution(out.audio_logits.transpose(1, 2), full_distribution(batch.params), quiet)  # (B, K, S, V)
    audio = pick_log_probs(log_dist, batch.tokens, batch.sampled)
    entropy = (categorical_entropy(log_dist) * batch.sampled if with_entropy
               else torch.zeros_like(audio))
    if out.text_logits is not None:
        text_dist = text_log_distribution(out.text_logits, full_distribution(batch.params), full=True)  # (B, T, V)
        audio = fold_text(audio, text_dist.gather(-1, batch.inputs.agent_text[..., None])[..., 0])
        if with_entropy:
            entropy = fold_text(entropy, categorical_entropy(text_dist))
    mean, log_var = step_distributions(model, out.visual_cond, batch.chains, batch.params.visual_temperature)
    target = batch.chains[:, :, 1:-1]  # (B, T, steps - 1, L2, D): x_{t-1} of every stochastic step
    return PolicyEvaluation(audio, entropy, mean, log_var, gaussian_log_density(target, mean, log_var))


def fold_text(audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Audio quantities (B, K, T * R) with the text's (B, T) added at each frame's first codebook-0 step."""
    b, k, s = audio.shape
    frames = text.shape[1]
    at_first = torch.zeros(b, k, frames, s // frames, dtype=audio.dtype, device=audio.device)
    at_first[:, 0, :, 0] = text
    return audio + at_first.flatten(2)


def step_distributions(model: AgentModel, cond: torch.Tensor, chains: torch.Tensor, temperature: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and log-variance (B, T, steps - 1, L2, D) of every stochastic step of `chains` given `cond`.

    The same step as DiffusionHead.sample and chain_log_probs (the tests check the densities agree
    with AgentModel.log_probs): step j maps the chain's x at j to j + 1, schedule index steps - 1 - j.
    """
    head = model.diffusion
    steps = chains.shape[2] - 1
    schedule = head.sampling_schedule(steps)
    stochastic = steps - 1
    xt = chains[:, :, :stochastic].transpose(2, 3)  # (B, T, L2, n, D)
    index = torch.arange(steps - 1, 0, -1, device=chains.device)  # (n,)
    t = schedule.timesteps.to(chains.device)[index].expand(xt.shape[:-1])  # (B, T, L2, n)
    c = cond[..., None, :].expand(*xt.shape[:-1], cond.shape[-1])  # (B, T, L2, n, H)
    mean, log_var = schedule.p_mean_log_variance(head(xt, t, c), xt, index.expand(xt.shape[:-1]), head.clip_x0)
    log_var = (log_var + 2 * math.log(temperature)).expand_as(mean)
    return mean.transpose(2, 3), log_var.transpose(2, 3)


def per_frame(audio: torch.Tensor, visual: torch.Tensor, audio_frames_per_video_frame: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum audio (B, K, T * R) and visual (B, T, ...) quantities per video frame: two (B, T) tensors."""
    b, k, s = audio.shape
    audio_t = audio.view(b, k, s // audio_frames_per_video_frame, audio_frames_per_video_frame).sum((1, 3))
    return audio_t, visual.flatten(2).sum(-1)
