"""The embedded default codec: residual VQ over log-mel frames, decoded with Griffin-Lim.

Why this exists: the tiny default agent must speak in codec tokens on a laptop with no
downloads. This codec is fitted by the project on its own espeak-ng speech (`model.codec.fit`),
saved as safetensors + config.json, and shipped under `model/assets/codec/`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from model.codec.base import AudioCodec, tensors_fingerprint
from model.codec.features import MelConfig, log_mel, mel_filterbank, mel_to_magnitude
from model.codec.griffin_lim import griffin_lim
from model.codec.kmeans import dequantize, fit_residual_codebooks, quantize

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "codec.safetensors"


@dataclass(frozen=True)
class SpectralCodecConfig:
    """Everything that defines a fitted spectral codec besides its codebooks."""

    mel: MelConfig = MelConfig()  # 24 kHz, hop 250 -> 96 frames/s, 80 log-mel bins
    num_codebooks: int = 9  # K = 9 like DAC, so the paper's delay pattern carries over
    codebook_size: int = 1024  # 10 bits per code like DAC; 9 x 1024 x 80 floats ~ 3 MB on disk
    kmeans_iterations: int = 25  # Lloyd steps per codebook; distortion has flattened by then
    griffin_lim_iterations: int = 32  # fast Griffin-Lim: 16 -> 48 steps gain only ~0.1 dB LSD
    griffin_lim_momentum: float = 0.99  # Perraudin et al.'s recommended acceleration
    seed: int = 0  # k-means++ draws and Griffin-Lim's initial phase: same fit, same decode


class SpectralRVQCodec(AudioCodec):
    """Log-mel frames, normalised per bin, quantised by K residual k-means codebooks."""

    def __init__(self, config: SpectralCodecConfig, codebooks: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
        expected = (config.num_codebooks, config.codebook_size, config.mel.n_mels)
        if tuple(codebooks.shape) != expected:
            raise ValueError(f"codebooks must have shape {expected}, got {tuple(codebooks.shape)}")
        self.config = config
        self.codebooks = codebooks.float()  # (K, C, n_mels), in normalised log-mel units
        self.mean = mean.float()  # (n_mels,)
        self.std = std.float()  # (n_mels,)
        self._filterbank = mel_filterbank(config.mel)  # (n_mels, n_freqs)
        self._filterbank_pinv = torch.linalg.pinv(self._filterbank)  # (n_freqs, n_mels)

    @property
    def sample_rate(self) -> int:
        return self.config.mel.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.config.mel.sample_rate / self.config.mel.hop_length

    @property
    def num_codebooks(self) -> int:
        return self.config.num_codebooks

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def fingerprint(self) -> str:
        return tensors_fingerprint(dataclasses.asdict(self.config),
                                   {"codebooks": self.codebooks, "mean": self.mean, "std": self.std})

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel frames (F, n_mels) of a validated wave."""
        return (log_mel(wave, self.config.mel, self._filterbank) - self.mean) / self.std

    @torch.no_grad()
    def encode(self, wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
        wave = self.check_wave(wave, sample_rate)
        return quantize(self.features(wave), self.codebooks)  # (K, F)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        codes = self.check_codes(codes)
        features = dequantize(codes, self.codebooks) * self.std + self.mean  # (F, n_mels)
        magnitude = mel_to_magnitude(features, self._filterbank_pinv, self.config.mel)
        wave = griffin_lim(
            magnitude,
            self.config.mel,
            self.config.griffin_lim_iterations,
            self.config.griffin_lim_momentum,
            self.config.seed,
        )
        return wave.clamp(-1.0, 1.0)

    @classmethod
    def fit(
        cls,
        waves: Sequence[torch.Tensor],
        config: SpectralCodecConfig = SpectralCodecConfig(),
        on_codebook: Callable[[int], None] | None = None,
    ) -> SpectralRVQCodec:
        """Fit normalisation and codebooks on mono waves at `config.mel.sample_rate`."""
        if not waves:
            raise ValueError("fitting a codec needs at least one wave, got none")
        filterbank = mel_filterbank(config.mel)
        frames = torch.cat([log_mel(w.float(), config.mel, filterbank) for w in waves])  # (N, n_mels)
        mean, std = frames.mean(0), frames.std(0).clamp(min=1e-3)
        codebooks = fit_residual_codebooks(
            (frames - mean) / std,
            config.num_codebooks,
            config.codebook_size,
            config.kmeans_iterations,
            config.seed,
            on_codebook,
        )
        return cls(config, codebooks, mean, std)

    def save(self, directory: str | Path, card: dict | None = None) -> None:
        """Write config.json (+ an optional card of fit facts) and codec.safetensors."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"codec": "spectral_rvq", "config": dataclasses.asdict(self.config), "card": card or {}}
        (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")
        tensors = {"codebooks": self.codebooks.contiguous(), "mean": self.mean.contiguous(), "std": self.std.contiguous()}
        save_file(tensors, str(directory / WEIGHTS_FILE))

    @classmethod
    def load(cls, directory: str | Path) -> SpectralRVQCodec:
        """Load a codec written by `save`; never unpickles."""
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        if not config_path.is_file() or not weights_path.is_file():
            raise FileNotFoundError(
                f"a fitted spectral codec needs {CONFIG_FILE} and {WEIGHTS_FILE} in {directory}; "
                "create one with `python -m model.codec.fit --out DIR`"
            )
        payload = json.loads(config_path.read_text())
        if payload.get("codec") != "spectral_rvq":
            raise ValueError(f"{config_path} describes codec {payload.get('codec')!r}, expected 'spectral_rvq'")
        raw = payload["config"]
        config = SpectralCodecConfig(**{**raw, "mel": MelConfig(**raw["mel"])})
        tensors = load_file(str(weights_path))
        return cls(config, tensors["codebooks"], tensors["mean"], tensors["std"])
