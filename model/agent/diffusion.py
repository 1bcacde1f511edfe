"""MAR-style diffusion head: a small MLP with AdaLN, conditioned per visual token slot.

Follows MAR (Li et al. 2024) and improved DDPM: cosine noise schedule, the network predicts the
noise and interpolates its log-variance between the posterior and the forward variance (learned
variance, trained with the variational bound on a stopped-gradient mean). Sampling runs on an
evenly respaced subset of the training timesteps. Every stochastic step x_t -> x_{t-1} is a Gaussian
whose log-density is recorded, so PPO can score the whole chain (as DDPO / DPOK do); the final step
to x_0 is the deterministic posterior mean.
"""

import math
from collections.abc import Sequence

import torch
from torch import nn


def cosine_betas(steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule, in float64 for exact cumulative products."""
    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return torch.tensor(
        [min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), max_beta) for i in range(steps)],
        dtype=torch.float64, device="cpu",  # constants: on the CPU even under a meta-device context
    )


class GaussianSchedule:
    """Coefficients of one (possibly respaced) schedule; `timesteps[n]` is what the network sees."""

    def __init__(self, betas: torch.Tensor, timesteps: torch.Tensor) -> None:
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=betas.dtype, device="cpu"), alphas_cumprod[:-1]])
        posterior_variance = betas * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod)
        self.timesteps = timesteps
        self.num_steps = len(betas)
        # Computed in float64, used in float32.
        self.sqrt_alphas_cumprod = alphas_cumprod.sqrt().float()
        self.sqrt_one_minus_alphas_cumprod = (1 - alphas_cumprod).sqrt().float()
        # The posterior variance is 0 at t = 0; as in ADM, its log is clipped to the value at t = 1.
        posterior_log_variance = torch.log(torch.cat([posterior_variance[1:2], posterior_variance[1:]]))
        posterior_mean_coef1 = betas * alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod)
        posterior_mean_coef2 = (1 - alphas_cumprod_prev) * (1 - betas).sqrt() / (1 - alphas_cumprod)
        self.posterior_log_variance = posterior_log_variance.float()
        self.posterior_mean_coef1 = posterior_mean_coef1.float()
        self.posterior_mean_coef2 = posterior_mean_coef2.float()
        self.sqrt_recip_alphas_cumprod = (1 / alphas_cumprod).sqrt().float()
        self.sqrt_recipm1_alphas_cumprod = (1 / alphas_cumprod - 1).sqrt().float()
        # The learned variance of improved DDPM: v in [-1, 1] moves the log-variance from the
        # posterior's to log beta_t, i.e. posterior_log_variance + (v + 1) * half_range.
        self.half_range = (0.5 * (torch.log(betas) - posterior_log_variance)).float()
        # The same coefficients as Python numbers, for the per-step sampling loop.
        self.step_coefficients = list(zip(
            self.sqrt_recip_alphas_cumprod.tolist(), self.sqrt_recipm1_alphas_cumprod.tolist(),
            self.posterior_mean_coef1.tolist(), self.posterior_mean_coef2.tolist(),
            self.posterior_log_variance.tolist(), self.half_range.tolist()))

    @classmethod
    def respaced(cls, train_steps: int, steps: int) -> "GaussianSchedule":
        """`steps` evenly spaced timesteps of the training schedule (ADM's space_timesteps)."""
        if not 2 <= steps <= train_steps:
            raise ValueError(f"diffusion steps must be in [2, {train_steps}], got {steps}")
        alphas_cumprod = torch.cumprod(1 - cosine_betas(train_steps), dim=0)
        stride = (train_steps - 1) / (steps - 1)  # >= 1, so the rounded timesteps are distinct
        timesteps = torch.tensor([round(i * stride) for i in range(steps)], dtype=torch.long, device="cpu")
        kept = alphas_cumprod[timesteps]
        previous = torch.cat([torch.ones(1, dtype=kept.dtype, device="cpu"), kept[:-1]])
        return cls(1 - kept / previous, timesteps)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return _at(self.sqrt_alphas_cumprod, t, x0) * x0 + _at(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise

    def posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = _at(self.posterior_mean_coef1, t, xt) * x0 + _at(self.posterior_mean_coef2, t, xt) * xt
        return mean, _at(self.posterior_log_variance, t, xt)

    def p_mean_log_variance(self, output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, clip: float | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(x_{t-1} | x_t) from the network's (eps, v) output (..., 2D).

        `clip` bounds the predicted x0 (ADM's clip_denoised).
        """
        eps, v = output.chunk(2, dim=-1)
        x0 = _at(self.sqrt_recip_alphas_cumprod, t, xt) * xt - _at(self.sqrt_recipm1_alphas_cumprod, t, xt) * eps
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        mean = _at(self.posterior_mean_coef1, t, xt) * x0 + _at(self.posterior_mean_coef2, t, xt) * xt
        return mean, _at(self.posterior_log_variance, t, xt) + (v + 1) * _at(self.half_range, t, xt)


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] broadcast against `like`: t has like's leading shape or is a scalar."""
    out = values.to(like.device)[t]
    return out.reshape(*out.shape, *([1] * (like.dim() - out.dim())))  # (*t.shape, 1, ..., 1)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(log_variance)) summed over the last (token width) dimension."""
    return (-0.5 * (math.log(2 * math.pi) + log_variance + (x - mean) ** 2 * torch.exp(-log_variance))).sum(-1)


class TimestepEmbedder(nn.Module):
    """Sinusoidal timestep features through a two-layer MLP (DiT / MAR)."""

    def __init__(self, width: int, frequencies: int = 256) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(nn.Linear(frequencies, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequencies // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = t.to(torch.float32)[..., None] * freqs  # (..., half)
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class DiffusionHead(nn.Module):
    """Denoises one visual token given its noisy value, the timestep and the backbone's slot output."""

    def __init__(self, token_dim: int, cond_dim: int, width: int, depth: int, train_steps: int,
                 clip_x0: float | None = None) -> None:
        super().__init__()
        self.token_dim = token_dim
        self.clip_x0 = clip_x0
        self.train_steps = train_steps
        self.schedule = GaussianSchedule(cosine_betas(train_steps), torch.arange(train_steps, device="cpu"))
        self.time_embed = TimestepEmbedder(width)
        self.cond_embed = nn.Linear(cond_dim, width)
        self.input_proj = nn.Linear(token_dim, width)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({
                "norm": nn.LayerNorm(width, elementwise_affine=False, eps=1e-6),
                "mlp": nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width)),
                "ada": nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width)),
            })
            for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.final = nn.Linear(width, 2 * token_dim)  # noise and variance interpolation
        # AdaLN-zero (DiT / MAR): every block starts as the identity and the output at zero.
        for module in [*(block["ada"][1] for block in self.blocks), self.final_ada[1], self.final]:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
        self._schedules: dict[int, GaussianSchedule] = {}

    def sampling_schedule(self, steps: int) -> GaussianSchedule:
        if steps not in self._schedules:
            self._schedules[steps] = GaussianSchedule.respaced(self.train_steps, steps)
        return self._schedules[steps]

    def modulations(self, t: torch.Tensor, cond: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """AdaLN (shift, 1 + scale, gate) per block and (shift, 1 + scale) for the output layer.

        They depend on (t, cond) only, so sampling computes them once per frame for all its steps.
        """
        c = self.time_embed(t) + self.cond_embed(cond)
        chunks = [block["ada"](c).chunk(3, dim=-1) for block in self.blocks] + [self.final_ada(c).chunk(2, dim=-1)]
        return [(shift, 1 + scale, *gate) for shift, scale, *gate in chunks]

    def denoise(self, xt: torch.Tensor, modulations: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
        h = self.input_proj(xt)
        for block, (shift, scale, gate) in zip(self.blocks, modulations):
            h = torch.addcmul(h, gate, block["mlp"](torch.addcmul(shift, block["norm"](h), scale)))
        shift, scale = modulations[-1]
        return self.final(torch.addcmul(shift, self.final_norm(h), scale))

    def forward(self, xt: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.denoise(xt, self.modulations(t, cond))

    def loss(self, x0: torch.Tensor, cond: torch.Tensor, draws: int) -> torch.Tensor:
        """Noise MSE + variational bound for tokens x0 (N, D) under conditions cond (N, C).

        Each condition is used `draws` times with independent timesteps and noise, which trains the
        head more per (expensive) backbone pass.
        """
        x0 = x0.repeat(draws, 1)  # (draws * N, D)
        cond = cond.repeat(draws, 1)  # (draws * N, C)
        t = torch.randint(0, self.train_steps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        xt = self.schedule.q_sample(x0, t, noise)
        output = self(xt, t, cond)
        eps, v = output.chunk(2, dim=-1)
        mse = ((eps - noise) ** 2).mean(-1)
        # The bound trains only the variance: the mean's gradient comes from the MSE (improved DDPM).
        mean, log_variance = self.schedule.p_mean_log_variance(torch.cat([eps.detach(), v], dim=-1), xt, t)
        true_mean, true_log_variance = self.schedule.posterior(x0, xt, t)
        kl = 0.5 * (-1 + log_variance - true_log_variance + torch.exp(true_log_variance - log_variance)
                    + (true_mean - mean) ** 2 * torch.exp(-log_variance)).mean(-1)
        nll = -gaussian_log_density(x0, mean, log_variance) / x0.shape[-1]  # continuous decoder at t = 0
        vb = torch.where(t == 0, nll, kl) / math.log(2.0)
        return (mse + vb).mean()

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, steps: int, temperature: float, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample tokens for conditions cond (N, C).

        Returns x0 (N, D), the chain of latents (steps + 1, N, D) from pure noise to x0, and the
        log-density (steps - 1, N) of every stochastic step under the noise scaled by `temperature`.
        """
        schedule = self.sampling_schedule(steps)
        n = cond.shape[0]
        mods = self.modulations(schedule.timesteps.to(cond.device)[:, None].expand(-1, n), cond.expand(steps, -1, -1))
        mods = [[part.unbind(0) for part in mod] for mod in mods]  # slice every step's parameters at once
        noise = torch.randn(steps, n, self.token_dim, generator=generator, device=cond.device)  # (steps, N, D)
        x = noise[0]
        chain, means, log_variances = [x], [], []
        log_temperature = 2 * math.log(temperature)
        for i in reversed(range(steps)):
            # The same arithmetic as GaussianSchedule.p_mean_log_variance, on Python numbers: faster.
            recip, recipm1, coef1, coef2, log_variance_lo, half_range = schedule.step_coefficients[i]
            eps, v = self.denoise(x, [[part[i] for part in mod] for mod in mods]).chunk(2, dim=-1)
            x0 = recip * x - recipm1 * eps
            if self.clip_x0 is not None:
                x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            mean = coef1 * x0 + coef2 * x
            if i == 0:
                x = mean
            else:
                log_variance = log_variance_lo + (v + 1) * half_range + log_temperature
                x = torch.addcmul(mean, torch.exp(0.5 * log_variance), noise[i])
                means.append(mean)
                log_variances.append(log_variance)
            chain.append(x)
        chain = torch.stack(chain)  # (steps + 1, N, D)
        log_probs = gaussian_log_density(chain[1:steps], torch.stack(means), torch.stack(log_variances))
        return x, chain, log_probs

    def chain_log_probs(self, cond: torch.Tensor, chain: torch.Tensor, temperature: float | torch.Tensor
                        ) -> torch.Tensor:
        """Recompute `sample`'s step log-densities: cond (..., C), chain (..., steps + 1, D) -> (..., steps - 1).

        `temperature` is a number or a tensor broadcastable to cond's leading shape (...,), e.g.
        one temperature per frame of a rollout continued with other parameters.
        """
        steps = chain.shape[-2] - 1
        schedule = self.sampling_schedule(steps)
        stochastic = steps - 1
        device = chain.device
        # Step j of the chain goes from schedule index steps - 1 - j to the one below it.
        index = torch.arange(steps - 1, 0, -1, device=device)  # (stochastic,)
        xt = chain[..., :stochastic, :]  # (..., stochastic, D)
        target = chain[..., 1 : stochastic + 1, :]  # (..., stochastic, D)
        cond = cond[..., None, :].expand(*xt.shape[:-1], cond.shape[-1])  # (..., stochastic, C)
        t = schedule.timesteps.to(device)[index].expand(xt.shape[:-1])  # (..., stochastic)
        output = self(xt, t, cond)
        mean, log_variance = schedule.p_mean_log_variance(output, xt, index.expand(xt.shape[:-1]), self.clip_x0)
        if isinstance(temperature, torch.Tensor):
            log_temperature = 2 * temperature.to(device=device, dtype=log_variance.dtype).log()[..., None, None]
        else:
            log_temperature = 2 * math.log(temperature)
        return gaussian_log_density(target, mean, log_variance + log_temperature)
