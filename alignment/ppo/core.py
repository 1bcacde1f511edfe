"""The numerics of KL-penalised PPO, as pure tensor functions (no model, no DeepSpeed).

Shapes: B rollouts of T steps (one step = one video frame of the agent). Everything here follows
TRL's 0.x `PPOTrainer` / `ppo_trainer.py` and OpenRLHF's `ppo_utils`, except what the agent's two
kinds of actions need: audio tokens (categorical) and diffusion-head denoising steps (Gaussian),
with a clip range each (DDPO clips its per-step ratios far tighter than token ratios).
"""

import math

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of `values` where `mask` is True (all of them when mask is None); 0 for an empty mask."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor | None = None, unbiased: bool = True) -> torch.Tensor:
    """Variance where `mask` is True, Bessel-corrected like TRL's masked_var."""
    mean = masked_mean(values, mask)
    centred = (values - mean) ** 2
    variance = masked_mean(centred, mask)
    if unbiased:
        count = values.numel() if mask is None else int(mask.sum())
        if count > 1:
            variance = variance * count / (count - 1)
    return variance


def whiten(values: torch.Tensor, mask: torch.Tensor | None = None, shift_mean: bool = True,
           eps: float = 1e-8) -> torch.Tensor:
    """Zero mean (unless shift_mean is False: rewards keep their sign) and unit variance."""
    mean, variance = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(variance + eps)
    return whitened if shift_mean else whitened + mean


def shape_rewards(scores: torch.Tensor, kl: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-step rewards (B, T): -beta * KL_t at every step plus the reward model's score (B,) at the last.

    Their sum over steps is score - beta * sum_t KL_t (Ziegler et al. 2019; TRL's compute_rewards).
    """
    rewards = -beta * kl
    rewards[:, -1] += scores
    return rewards


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over (B, T); the episode ends after step T - 1 (V = 0 there).

    A_t = sum_l (gamma lam)^l delta_{t+l} with delta_t = r_t + gamma V_{t+1} - V_t; returns A and
    the value targets A + V.
    """
    steps = rewards.shape[-1]
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in reversed(range(steps)):
        next_value = values[..., t + 1] if t + 1 < steps else torch.zeros_like(values[..., t])
        delta = rewards[..., t] + gamma * next_value - values[..., t]
        running = delta + gamma * lam * running
        advantages[..., t] = running
    return advantages, advantages + values


def clipped_policy_loss(log_ratio: torch.Tensor, advantages: torch.Tensor, clip: float,
                        mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate, averaged where mask is True; returns (loss, clip fraction).

    log_ratio = log pi(a) - log pi_old(a) per action; advantages broadcast against it. Outside the
    clip region in the direction the advantage pushes, the loss is constant: zero gradient.
    """
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).to(log_ratio.dtype), mask)
    return loss, clipfrac.detach()


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """0.5 * max((V - R)^2, (clip(V, V_old +- clip) - R)^2), averaged; returns (loss, clip fraction)."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    unclipped_loss = (values - returns) ** 2
    clipped_loss = (clipped_values - returns) ** 2
    loss = 0.5 * torch.maximum(unclipped_loss, clipped_loss).mean()
    return loss, (clipped_loss > unclipped_loss).float().mean().detach()


def kl_k1(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """log pi(a) - log pi_ref(a) for a ~ pi: unbiased for KL(pi || pi_ref), but any sign per sample."""
    return log_probs - ref_log_probs


def kl_k3(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 = (r - 1) - log r with r = pi_ref(a) / pi(a), a ~ pi: unbiased and never negative."""
    log_r = ref_log_probs - log_probs
    return torch.expm1(log_r) - log_r


def gaussian_kl(mean_p: torch.Tensor, log_var_p: torch.Tensor, mean_q: torch.Tensor, log_var_q: torch.Tensor
                ) -> torch.Tensor:
    """KL(N(mean_p, var_p) || N(mean_q, var_q)) of diagonal Gaussians, summed over the last dimension.

    The DPOK regulariser per denoising step: policy and reference take the same x_t, so the step's
    KL is exact in closed form instead of estimated from one sample.
    """
    log_var_p, log_var_q = torch.broadcast_tensors(log_var_p, log_var_q)
    # exp(log_var_p - log_var_q) rather than var_p / var_q: exactly 1, so KL exactly 0, for equal inputs.
    kl = 0.5 * (log_var_q - log_var_p + torch.exp(log_var_p - log_var_q) + (mean_p - mean_q) ** 2 * torch.exp(-log_var_q) - 1)
    return kl.sum(-1)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(log_var)) summed over the last dimension."""
    return (-0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var))).sum(-1)


def categorical_entropy(log_dist: torch.Tensor) -> torch.Tensor:
    """Entropy of categorical distributions given as log-probabilities (..., V); -inf entries count as 0."""
    probs = log_dist.exp()
    return -(probs * log_dist.masked_fill(probs == 0, 0.0)).sum(-1)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """1 - Var(R - V) / Var(R): 1 for a perfect critic, 0 for a constant one, negative when worse."""
    variance = returns.var(unbiased=False)
    return 1 - (returns - values).var(unbiased=False) / variance.clamp(min=1e-8)
