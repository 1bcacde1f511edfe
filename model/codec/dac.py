"""Adapter for DAC, the paper's codec (44.1 kHz, hop 512 = ~86 frames/s, 9 codebooks).

Why this exists: the paper configuration speaks in DAC tokens. The `descript-audio-codec`
package is an optional extra (`pip install her-rlhf[dac]`) and its weights must already be on
disk; nothing is downloaded. The checkpoint is read with `torch.load(weights_only=True)` and
the network rebuilt from its recorded constructor arguments, so no pickle code ever runs.
"""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import torch

from model.codec.base import AudioCodec, tensors_fingerprint


def _import_dac():
    try:
        import dac
    except ImportError as error:
        raise ImportError(
            "the DAC codec needs the optional extra: pip install 'her-rlhf[dac]' "
            "(package descript-audio-codec)"
        ) from error
    return dac


class DACCodec(AudioCodec):
    """Descript Audio Codec behind the `AudioCodec` interface, on CPU unless moved."""

    def __init__(self, weights_path: str | Path, device: str | torch.device = "cpu"):
        weights_path = Path(weights_path)
        if not weights_path.is_file():
            raise FileNotFoundError(f"DAC weights not found at {weights_path}; pass a local .pth file")
        dac = _import_dac()
        try:
            checkpoint = torch.load(weights_path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise ValueError(f"{weights_path} holds objects beyond tensors and plain data; refusing to unpickle it") from error
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise ValueError(f"{weights_path} is not a DAC checkpoint (expected a dict with 'state_dict')")
        # Like audiotools' own loader, pass on only the arguments DAC's constructor accepts.
        accepted = inspect.signature(dac.DAC).parameters
        kwargs = {k: v for k, v in checkpoint.get("metadata", {}).get("kwargs", {}).items() if k in accepted}
        self.model = dac.DAC(**kwargs)
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.eval().to(device)
        self.device = torch.device(device)

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    @property
    def frame_rate(self) -> float:
        return self.model.sample_rate / self.model.hop_length

    @property
    def num_codebooks(self) -> int:
        return int(self.model.n_codebooks)

    @property
    def codebook_size(self) -> int:
        return int(self.model.codebook_size)

    @property
    def fingerprint(self) -> str:
        return tensors_fingerprint({"codec": "dac"}, self.model.state_dict())

    @torch.no_grad()
    def encode(self, wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
        wave = self.check_wave(wave, sample_rate)
        batch = wave.to(self.device)[None, None, :]  # (1, 1, T): DAC's (batch, channels, time)
        batch = self.model.preprocess(batch, sample_rate)  # right-pads to a multiple of hop
        _, codes, *_ = self.model.encode(batch)  # codes (1, K, F)
        return codes[0].long().cpu()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        codes = self.check_codes(codes)
        latents, *_ = self.model.quantizer.from_codes(codes[None].to(self.device))  # (1, D, F)
        wave = self.model.decode(latents)  # (1, 1, T')
        return wave[0, 0].float().cpu()
