"""Log-mel features and their inverse, the spectral codec's continuous space.

Why this exists: residual VQ over 80 log-mel bins keeps the fitted codebooks small enough to
ship in the repository (9 x 1024 x 80 floats, about 3 MB), while a mel-to-linear projection
plus phase reconstruction (`griffin_lim`) turns them back into a wave.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MelConfig:
    """STFT and mel settings; hop 250 at 24 kHz gives 96 frames/s = 4 per 24 fps video frame."""

    sample_rate: int = 24_000  # enough bandwidth for speech (12 kHz), cheap on CPU
    hop_length: int = 250  # 24000 / 250 = 96 Hz, exactly 4 audio frames per video frame
    n_fft: int = 1024  # 42.7 ms window: resolves the harmonics of voices down to ~80 Hz pitch
    win_length: int = 1000  # 4 hops: Hann windows at 75 % overlap sum to a constant for istft
    n_mels: int = 80  # the usual vocoder resolution; keeps codebooks at 80 dims
    f_min: float = 0.0  # keep the lowest bins so pitch energy survives
    f_max: float = 12_000.0  # Nyquist at 24 kHz
    log_floor: float = 1e-5  # -100 dB magnitude floor so silence has a finite log


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    # Slaney's mel scale: linear below 1 kHz, logarithmic above.
    linear = hz / (200.0 / 3)
    log = 15.0 + torch.log(hz.clamp(min=1e-6) / 1000.0) / (torch.log(torch.tensor(6.4)) / 27.0)
    return torch.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = mel * (200.0 / 3)
    log = 1000.0 * torch.exp((torch.log(torch.tensor(6.4)) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log, linear)


def mel_filterbank(config: MelConfig) -> torch.Tensor:
    """Slaney-normalised triangular filters, shape (n_mels, n_fft // 2 + 1)."""
    freqs = torch.linspace(0, config.sample_rate / 2, config.n_fft // 2 + 1, dtype=torch.float64)
    mel_edges = torch.linspace(
        float(_hz_to_mel(torch.tensor(config.f_min, dtype=torch.float64))),
        float(_hz_to_mel(torch.tensor(config.f_max, dtype=torch.float64))),
        config.n_mels + 2,
        dtype=torch.float64,
    )
    hz_edges = _mel_to_hz(mel_edges)
    lower, center, upper = hz_edges[:-2, None], hz_edges[1:-1, None], hz_edges[2:, None]
    rising = (freqs[None, :] - lower) / (center - lower)  # (n_mels, n_freqs)
    falling = (upper - freqs[None, :]) / (upper - center)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)  # (n_mels, n_freqs)
    weights *= (2.0 / (upper - lower))  # equal area per filter, as in Slaney / librosa
    return weights.float()


def num_frames(num_samples: int, hop_length: int) -> int:
    """Code frames for a clip: one per started hop, so 1 s at 24 kHz / 250 is exactly 96."""
    return -(-num_samples // hop_length)


def _window(config: MelConfig) -> torch.Tensor:
    """Periodic Hann of win_length, zero-padded to n_fft and centred (as torch.stft does)."""
    window = torch.hann_window(config.win_length)
    left = (config.n_fft - config.win_length) // 2
    return torch.nn.functional.pad(window, (left, config.n_fft - config.win_length - left))


def stft(wave: torch.Tensor, config: MelConfig) -> torch.Tensor:
    """Centred STFT (n_freqs, len // hop + 1) with zero padding, so clips of any length work.

    Written with unfold + rfft rather than torch.stft/istft because Griffin-Lim calls the pair
    dozens of times per decode and this form lets `istft` reuse one overlap-add envelope.
    """
    half = config.n_fft // 2
    padded = torch.nn.functional.pad(wave, (half, half))
    frames = padded.unfold(0, config.n_fft, config.hop_length) * _window(config)  # (F + 1, n_fft)
    return torch.fft.rfft(frames, dim=-1).T  # (n_freqs, F + 1)


def inverse_envelope(num_frames: int, config: MelConfig) -> torch.Tensor:
    """1 / (sum of squared windows) at each output sample: `istft`'s normaliser, computed once."""
    squared = (_window(config) ** 2)[:, None].expand(-1, num_frames)  # (n_fft, frames)
    return 1.0 / _overlap_add(squared, config).clamp(min=1e-8)


def _overlap_add(frames: torch.Tensor, config: MelConfig) -> torch.Tensor:
    """Overlap-add columns (n_fft, frames) at hop spacing into one padded signal."""
    length = config.n_fft + config.hop_length * (frames.shape[1] - 1)
    summed = torch.nn.functional.fold(
        frames[None], output_size=(1, length), kernel_size=(1, config.n_fft), stride=(1, config.hop_length)
    )  # (1, 1, 1, length)
    return summed.reshape(length)  # (1, 1, 1, length) -> (length,)


def istft(spec: torch.Tensor, inv_envelope: torch.Tensor, config: MelConfig) -> torch.Tensor:
    """Inverse of `stft` for (n_freqs, F + 1): a wave of F * hop samples."""
    frames = torch.fft.irfft(spec.T, n=config.n_fft, dim=-1) * _window(config)  # (F + 1, n_fft)
    wave = _overlap_add(frames.T, config) * inv_envelope  # (n_fft + hop * F,)
    half = config.n_fft // 2
    return wave[half : half + config.hop_length * (spec.shape[1] - 1)]


def magnitude(wave: torch.Tensor, config: MelConfig) -> torch.Tensor:
    """Linear STFT magnitude (n_freqs, F) with F = ceil(T / hop)."""
    frames = num_frames(wave.shape[-1], config.hop_length)
    padded = torch.nn.functional.pad(wave, (0, frames * config.hop_length - wave.shape[-1]))
    return stft(padded, config).abs()[:, :frames]  # centred framing adds one frame at the end


def log_mel(wave: torch.Tensor, config: MelConfig, filterbank: torch.Tensor) -> torch.Tensor:
    """Log-mel features (F, n_mels) of a mono wave (T,)."""
    mel = filterbank @ magnitude(wave, config)  # (n_mels, F)
    return torch.log(mel.clamp(min=config.log_floor)).T  # (F, n_mels)


def mel_to_magnitude(features: torch.Tensor, filterbank_pinv: torch.Tensor, config: MelConfig) -> torch.Tensor:
    """Approximate linear magnitude (n_freqs, F) from log-mel features (F, n_mels)."""
    mel = torch.exp(features).T  # (n_mels, F)
    return (filterbank_pinv @ mel).clamp(min=0.0)
