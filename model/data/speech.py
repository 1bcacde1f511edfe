"""Speech voiced by espeak-ng, the project's own source of real audio.

Why this exists: there are no hub downloads, yet the codec must be fitted on speech and the
synthetic dialogue corpus needs two parties talking with distinct voices. espeak-ng is a small
apt package that turns text into a wav deterministically; this module runs it and hands back
a float32 wave at the rate the caller works at.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.media import decode_audio


@dataclass(frozen=True)
class Voice:
    """How espeak-ng should sound: a voice name (with optional "+variant") and its pitch."""

    name: str = "en-us"  # espeak-ng's American English voice; clear and always installed
    pitch: int = 50  # espeak-ng's 0..99 scale; 50 is the voice's own default pitch
    speed: int = 165  # words per minute; espeak-ng's default 175 is a little hurried
    amplitude: int = 100  # espeak-ng's 0..200 scale; 100 is its default loudness


class EspeakMissingError(RuntimeError):
    """espeak-ng is not installed; the project setup installs it (apt-get install espeak-ng)."""


def espeak_path() -> str:
    """The espeak-ng executable, or a clear error saying how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise EspeakMissingError(
            "espeak-ng was not found on PATH; install it with `apt-get install espeak-ng` "
            "(the project's setup script does this)"
        )
    return path


@functools.cache
def espeak_version() -> str:
    """espeak-ng's version line (with its data path): another build may voice the same text differently."""
    result = subprocess.run([espeak_path(), "--version"], capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.strip()


def synthesize(text: str, sample_rate: int = 24_000, voice: Voice = Voice()) -> torch.Tensor:
    """Voice `text` with espeak-ng and return a float32 mono wave (S,) at `sample_rate`."""
    if not text.strip():
        raise ValueError("text to synthesize is empty")
    if not 0 <= voice.pitch <= 99:
        raise ValueError(f"espeak-ng pitch must be within 0..99, got {voice.pitch}")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        command = [
            espeak_path(), "-v", voice.name, "-p", str(voice.pitch), "-s", str(voice.speed),
            "-a", str(voice.amplitude), "-w", str(wav), "--", text,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
            raise RuntimeError(
                f"espeak-ng failed for voice {voice.name!r} (exit {result.returncode}): "
                f"{result.stderr.strip() or 'no audio written'}"
            )
        wave = decode_audio(wav, sample_rate)
    return torch.from_numpy(np.ascontiguousarray(wave))
