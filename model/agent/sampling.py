"""How an agent variant samples audio codes: its parameters and two log-probabilities per token.

A token is drawn from the *sampling distribution*: the special token excluded, logits divided by
the temperature, cut to the top k. Its log-probability is exact for the sampler, but under any
other weights (an updated policy, the frozen reference) a sampled token can fall outside their
top k and get -inf, which makes PPO's ratio 0 and the KL infinite. So every token also records
its *full-distribution* log-probability at the same temperature (no top-k cut), which is finite
under every model: that is the one PPO's ratios and KL use. Without top-k the two are equal.

Temperature shapes what the agent says, not whether it speaks. For an agent whose config names
the codec's quiet codes (AgentConfig.quiet_codes), codebook 0's probability of a quiet code (the
agent silent) against a voiced one keeps its value at temperature 1, and the temperature reshapes
the distribution inside each group. Dividing all logits by 0.7 instead shrinks the diffuse mass of
hundreds of voiced codes far more than one peaked silence code: the agent answered 0-3% of the
turns it answered 75% of at temperature 1 (ARCHITECTURE.md, the default agent's recipe).
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    """How an agent variant samples; stored with the variant, not in code."""

    audio_temperature: float = 1.0  # divides the audio logits; < 1 sharpens
    visual_temperature: float = 1.0  # scales the diffusion noise std (MAR's temperature)
    top_k: int | None = None  # keep the k most likely codes per codebook; None keeps all
    diffusion_steps: int = 10  # respaced denoising steps per frame; 10 keeps the tiny agent real time
    seed: int = 0  # seeds the session's generator, so a (variant, seed) pair is reproducible

    def __post_init__(self) -> None:
        if not self.audio_temperature > 0 or not self.visual_temperature > 0:
            raise ValueError("temperatures must be > 0 (log-probabilities are undefined at 0)")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be None or >= 1, got {self.top_k}")
        if self.diffusion_steps < 2:
            raise ValueError(f"diffusion_steps must be >= 2, got {self.diffusion_steps}")


def quiet_mask(quiet_codes: list[int], num_codebooks: int, codebook_size: int,
               device: torch.device | str = "cpu") -> torch.Tensor | None:
    """(K, V) bool: True at codebook 0's quiet codes, False everywhere else; None without quiet codes.

    Callers lay it out like their logits' codebook axis (e.g. ``mask[:, None]`` for (K, S, V)).
    """
    if not quiet_codes:
        return None
    mask = torch.zeros(num_codebooks, codebook_size, dtype=torch.bool, device=device)
    mask[0, quiet_codes] = True
    return mask


def tempered_log_softmax(logits: torch.Tensor, temperature: float, quiet: torch.Tensor | None = None) -> torch.Tensor:
    """log_softmax(logits / temperature) over the last axis, except that with a `quiet` mask
    (broadcastable to logits) each row keeps its temperature-1 mass on the quiet codes and on the
    others, and the temperature acts within each group. A row without quiet codes is plainly tempered."""
    scaled = logits / temperature
    if quiet is None or temperature == 1.0:
        return torch.log_softmax(scaled, dim=-1)
    quiet = quiet.expand_as(logits)
    natural = torch.log_softmax(logits, dim=-1)
    quiet_mass, voiced_mass = masked_logsumexp(natural, quiet), masked_logsumexp(natural, ~quiet)  # at temperature 1
    quiet_norm, voiced_norm = masked_logsumexp(scaled, quiet), masked_logsumexp(scaled, ~quiet)
    return torch.where(quiet, quiet_mass[..., None] + scaled - quiet_norm[..., None],
                       voiced_mass[..., None] + scaled - voiced_norm[..., None])


def masked_logsumexp(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """logsumexp of `values` over the last axis where `mask` holds. An empty mask gives a very
    negative finite number rather than -inf, so that a torch.where on the result never
    differentiates a NaN through its unused branch."""
    return values.masked_fill(~mask, torch.finfo(values.dtype).min / 4).logsumexp(-1)


def audio_log_distribution(logits: torch.Tensor, params: SamplingParams, quiet: torch.Tensor | None = None
                           ) -> torch.Tensor:
    """Log-probabilities (..., V) of the sampling distribution from head logits (..., V + 1).

    The special token is never sampled (the delay pattern decides where it goes), then the logits
    are tempered (keeping the quiet/voiced split with a `quiet` mask, see the module docstring) and
    cut to the top k.
    """
    scaled = tempered_log_softmax(logits[..., :-1], params.audio_temperature, quiet)  # (..., V)
    if params.top_k is not None and params.top_k < scaled.shape[-1]:
        kth = scaled.topk(params.top_k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.log_softmax(scaled, dim=-1)


def audio_full_log_distribution(logits: torch.Tensor, params: SamplingParams, quiet: torch.Tensor | None = None
                                ) -> torch.Tensor:
    """Log-probabilities (..., V) at the sampling temperature over every code (no top-k cut): finite
    everywhere, so ratios and KL between models stay finite."""
    return tempered_log_softmax(logits[..., :-1], params.audio_temperature, quiet)


def audio_token_log_probs(logits: torch.Tensor, tokens: torch.Tensor, sampled: torch.Tensor,
                          params: SamplingParams, quiet: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(full-distribution, sampling-distribution) log-probabilities of tokens (...,) under logits
    (..., V + 1); 0 where nothing was sampled."""
    full = pick_log_probs(audio_full_log_distribution(logits, params, quiet), tokens, sampled)
    if params.top_k is None or params.top_k >= logits.shape[-1] - 1:
        return full, full
    return full, pick_log_probs(audio_log_distribution(logits, params, quiet), tokens, sampled)


def pick_log_probs(log_dist: torch.Tensor, tokens: torch.Tensor, sampled: torch.Tensor) -> torch.Tensor:
    """log_dist (..., V) at tokens (...,); 0 where `sampled` is False (the special token's places)."""
    picked = log_dist.gather(-1, tokens.clamp(max=log_dist.shape[-1] - 1)[..., None])[..., 0]
    return torch.where(sampled, picked, torch.zeros_like(picked))


def sample_categorical(log_dist: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row of log_dist (N, V) by inverse CDF: exact, and ~8x faster than multinomial on CPU."""
    cdf = log_dist.exp().cumsum(-1)  # (N, V)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]  # (N, 1)
    # right=True: the first index whose cdf exceeds u, so zero-probability codes are never drawn.
    return torch.searchsorted(cdf, u, right=True)[:, 0].clamp(max=cdf.shape[-1] - 1)


def text_log_distribution(logits: torch.Tensor, params: SamplingParams, full: bool = False) -> torch.Tensor:
    """Log-probabilities (..., V) of the monologue's sampling distribution from text logits (..., V).

    The audio's temperature and top-k; PAD (token 0, "nothing new") keeps its temperature-1 mass
    against the characters, as the quiet codes do for codebook 0 (module docstring): the text's
    onset leads the voice's, so a plainly tempered PAD would silence the agent at T < 1 again.
    `full` skips the top-k cut (the distribution PPO's ratios and KL use).
    """
    pad = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    pad[0] = True
    scaled = tempered_log_softmax(logits, params.audio_temperature, pad)
    if not full and params.top_k is not None and params.top_k < scaled.shape[-1]:
        kth = scaled.topk(params.top_k, dim=-1).values[..., -1:]
        scaled = torch.log_softmax(scaled.masked_fill(scaled < kth, float("-inf")), dim=-1)
    return scaled


def text_token_log_probs(logits: torch.Tensor, tokens: torch.Tensor, params: SamplingParams
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(full-distribution, sampling-distribution) log-probabilities of text tokens (...,) under logits (..., V)."""
    full = text_log_distribution(logits, params, full=True).gather(-1, tokens[..., None])[..., 0]
    if params.top_k is None or params.top_k >= logits.shape[-1]:
        return full, full
    return full, text_log_distribution(logits, params).gather(-1, tokens[..., None])[..., 0]
