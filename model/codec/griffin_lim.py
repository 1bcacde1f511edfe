"""Phase reconstruction for the spectral codec (torchaudio is not a dependency).

Why this exists: the codec only keeps magnitudes, so a wave needs a phase consistent with them.
Fast Griffin-Lim (Perraudin et al. 2013) adds momentum to the classic alternating projections
and converges in a few dozen iterations.
"""

from __future__ import annotations

import torch

from model.codec.features import MelConfig


def griffin_lim(
    magnitude: torch.Tensor,
    config: MelConfig,
    iterations: int,
    momentum: float,
    seed: int,
) -> torch.Tensor:
    """Wave (F * hop,) whose STFT magnitude approximates `magnitude` (n_freqs, F)."""
    frames = magnitude.shape[1]
    length = frames * config.hop_length
    # Repeat the last frame: centred istft of F+1 frames yields exactly F * hop samples.
    target = torch.cat([magnitude, magnitude[:, -1:]], dim=1)  # (n_freqs, F + 1)
    window = torch.hann_window(config.win_length)
    stft_args = dict(n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.win_length, window=window)
    generator = torch.Generator().manual_seed(seed)
    phase = torch.rand(target.shape, generator=generator) * 2 * torch.pi
    angles = torch.polar(torch.ones_like(target), phase)
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        wave = torch.istft(target * angles, length=length, center=True, **stft_args)
        rebuilt = torch.stft(wave, center=True, return_complex=True, **stft_args)[:, : frames + 1]
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        angles = accelerated / accelerated.abs().clamp(min=1e-8)
    return torch.istft(target * angles, length=length, center=True, **stft_args)
