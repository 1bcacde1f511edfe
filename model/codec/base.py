"""The audio codec interface that the agent model, the workers and the renderer share.

Why this exists: G speaks in discrete tokens from K residual codebooks, workers turn a human's
voice into the same tokens, and annotators hear the decoded wave. The embedded spectral codec
and the paper's DAC both sit behind this one small interface, chosen by `load_codec(spec)`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod

import torch


class AudioCodec(ABC):
    """Mono wave <-> codes of shape (K, F): K residual codebooks at `frame_rate` frames/s."""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Rate in Hz that `encode` expects and `decode` returns."""

    @property
    @abstractmethod
    def frame_rate(self) -> float:
        """Code frames per second."""

    @property
    @abstractmethod
    def num_codebooks(self) -> int:
        """K, the number of residual codebooks (rows of the codes)."""

    @property
    @abstractmethod
    def codebook_size(self) -> int:
        """Entries per codebook; valid codes are 0 .. codebook_size - 1."""

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """SHA-256 of everything that decides the codes (configuration and weights): codes cached on
        disk are keyed by it (model.data.store.cached_clips), so another codec's are never read back."""

    @abstractmethod
    def encode(self, wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Float32 mono wave (T,) at `sample_rate` -> int64 codes (K, F)."""

    @abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Int64 codes (K, F) -> float32 mono wave (T',) at `sample_rate`."""

    def check_wave(self, wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Validate an input wave and return it as float32 (T,); raise ValueError otherwise."""
        if sample_rate != self.sample_rate:
            raise ValueError(
                f"{type(self).__name__} expects audio at {self.sample_rate} Hz, got {sample_rate} Hz; "
                "resample first (e.g. model.media.decode_audio(path, codec.sample_rate))"
            )
        if not isinstance(wave, torch.Tensor):
            raise ValueError(f"wave must be a torch.Tensor (T,), got {type(wave).__name__}")
        if wave.dim() != 1:
            raise ValueError(
                f"wave must be mono with shape (T,), got shape {tuple(wave.shape)}; "
                "mix channels down first (e.g. wave.mean(0) for (C, T))"
            )
        if wave.numel() == 0:
            raise ValueError("wave is empty (0 samples); nothing to encode")
        if not wave.is_floating_point():
            raise ValueError(f"wave must be floating point in [-1, 1], got dtype {wave.dtype}")
        if not torch.isfinite(wave).all():
            raise ValueError("wave contains NaN or infinite samples")
        return wave.float()

    def check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Validate codes (K, F) and return them as int64; raise ValueError otherwise."""
        if not isinstance(codes, torch.Tensor) or codes.dim() != 2:
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"codes must be a tensor of shape (K, F), got {shape}")
        if codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
        if codes.shape[0] != self.num_codebooks:
            raise ValueError(
                f"codes must have K={self.num_codebooks} rows (one per codebook), got {codes.shape[0]}"
            )
        if codes.shape[1] == 0:
            raise ValueError("codes are empty (0 frames); nothing to decode")
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or high >= self.codebook_size:
            raise ValueError(
                f"codes must lie in 0..{self.codebook_size - 1}, got values in {low}..{high}"
            )
        return codes.long()


def tensors_fingerprint(config: dict, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a JSON-able configuration and named tensors (names, dtypes, shapes and values)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
