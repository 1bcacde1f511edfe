"""Fixtures for the representation tests: real espeak-ng speech and the shipped codec.

espeak-ng is a hard requirement of the project (the setup installs it), so a missing binary
fails these tests with the install command rather than skipping them.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from model.agent import AgentConfig, AgentModel
from model.codec import SpectralRVQCodec, load_codec
from model.data.speech import Voice, synthesize

HELD_OUT_SENTENCE = "Seventy brave sailors whispered quietly about a purple lighthouse."


@pytest.fixture(scope="session")
def espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        pytest.fail("espeak-ng is not installed; run `apt-get install espeak-ng` (the setup script does this)")
    return path


@pytest.fixture(scope="session")
def default_codec() -> SpectralRVQCodec:
    return load_codec("default")


@pytest.fixture(scope="session")
def speech_clip(espeak) -> torch.Tensor:
    """3.0 s of held-out speech at 24 kHz: a sentence and pitch the codec was not fitted on."""
    wave = synthesize(HELD_OUT_SENTENCE, 24_000, Voice("en-gb", pitch=45))
    seconds = 3
    if len(wave) < seconds * 24_000:
        raise AssertionError(f"espeak-ng produced only {len(wave) / 24_000:.2f} s for the held-out sentence")
    return wave[: seconds * 24_000].contiguous()


@pytest.fixture(scope="module")
def micro_checkpoint(tmp_path_factory):
    """An untrained checkpoint of a tiny configuration on the shipped codec (weights from seed 7):
    the cheapest agent a command-line test can sample."""
    torch.manual_seed(7)
    config = AgentConfig(backbone={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 1,
                                   "max_position_embeddings": 4096},
                         diffusion_width=32, diffusion_depth=1, diffusion_train_steps=100)
    return AgentModel(config).save_pretrained(tmp_path_factory.mktemp("agent") / "tiny")


def overfit(model: AgentModel, batch, steps: int, lr: float = 3e-3) -> None:
    """`steps` AdamW steps of `model`'s total loss on one batch: the tests' "does it learn" loop."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = model.loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
