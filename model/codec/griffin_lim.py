"""Phase reconstruction for the spectral codec (torchaudio is not a dependency).

Why this exists: the codec only keeps magnitudes, so a wave needs a phase consistent with them.
Fast Griffin-Lim (Perraudin et al. 2013) adds momentum to the classic alternating projections
and converges in a few dozen iterations.
"""

from __future__ import annotations

import torch

from model.codec.features import MelConfig, inverse_envelope, istft, stft


def griffin_lim(
    magnitude: torch.Tensor,
    config: MelConfig,
    iterations: int,
    momentum: float,
    seed: int,
) -> torch.Tensor:
    """Wave (F * hop,) whose STFT magnitude approximates `magnitude` (n_freqs, F)."""
    frames = magnitude.shape[1]
    # Repeat the last frame: centred framing of F * hop samples has F + 1 frames.
    target = torch.cat([magnitude, magnitude[:, -1:]], dim=1)  # (n_freqs, F + 1)
    inv_envelope = inverse_envelope(frames + 1, config)
    generator = torch.Generator().manual_seed(seed)
    phase = torch.rand(target.shape, generator=generator) * 2 * torch.pi
    angles = torch.polar(torch.ones_like(target), phase)
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        rebuilt = stft(istft(target * angles, inv_envelope, config), config)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        angles = torch.sgn(accelerated)  # z / |z|: keep the phase, drop the magnitude
    return istft(target * angles, inv_envelope, config)
