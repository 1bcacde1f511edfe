"""How close a decoded wave is to the original, for the codec's tests and its fit card.

Why this exists: Griffin-Lim phases differ from the original's, so sample-wise SNR says
little; the log-spectral distance compares what a listener hears, the magnitude spectrum.
"""

from __future__ import annotations

import torch

from model.codec.features import MelConfig, magnitude


def log_spectral_distance(reference: torch.Tensor, estimate: torch.Tensor, config: MelConfig = MelConfig()) -> float:
    """Mean over frames of the RMS difference in dB between two power spectra.

    Only frames within 60 dB of the reference's loudest frame count, so stretches of
    digital silence (where any floor choice dominates) do not decide the number.
    """
    length = min(reference.shape[-1], estimate.shape[-1])
    if length == 0:
        raise ValueError("log_spectral_distance needs two non-empty waves")
    power_ref = magnitude(reference[:length].float(), config) ** 2  # (n_freqs, F)
    power_est = magnitude(estimate[:length].float(), config) ** 2
    floor = 1e-10
    db_ref = 10 * torch.log10(power_ref + floor)
    db_est = 10 * torch.log10(power_est + floor)
    frame_energy = 10 * torch.log10(power_ref.sum(0) + floor)  # (F,)
    active = frame_energy > frame_energy.max() - 60.0
    per_frame = ((db_ref - db_est) ** 2).mean(0).sqrt()  # (F,)
    return float(per_frame[active].mean())
