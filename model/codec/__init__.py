"""Audio codecs: waves <-> K x F integer codes (see `base.AudioCodec`).

`load_codec(spec)` picks one by a config string:
- "default": the spectral RVQ codec fitted by the project, shipped in `model/assets/codec/`
- "spectral:/path/dir": a spectral codec saved by `SpectralRVQCodec.save` / `model.codec.fit`
- "dac:/path/to/weights.pth": the paper's DAC (needs the `dac` extra and local weights)
"""

from __future__ import annotations

from pathlib import Path

from model.codec.base import AudioCodec
from model.codec.spectral import SpectralCodecConfig, SpectralRVQCodec

DEFAULT_CODEC_DIR = Path(__file__).resolve().parent.parent / "assets" / "codec"

__all__ = ["AudioCodec", "SpectralRVQCodec", "SpectralCodecConfig", "load_codec", "DEFAULT_CODEC_DIR"]


def load_codec(spec: str = "default") -> AudioCodec:
    """Load a codec by config string: "default", "spectral:/dir" or "dac:/weights.pth"."""
    if spec == "default":
        return SpectralRVQCodec.load(DEFAULT_CODEC_DIR)
    kind, sep, path = spec.partition(":")
    if sep and path and kind == "spectral":
        return SpectralRVQCodec.load(path)
    if sep and path and kind == "dac":
        from model.codec.dac import DACCodec  # imported here: the dac extra is optional

        return DACCodec(path)
    raise ValueError(
        f"unknown codec spec {spec!r}; expected 'default', 'spectral:/path/dir' or 'dac:/path/weights.pth'"
    )
