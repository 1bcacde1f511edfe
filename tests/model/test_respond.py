"""The Responder's contracts: it pairs an agent only with the codec its frame rate was derived from,
builds the visual tokenizer the configuration names, and turns tokens into the frames people see."""

import string
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from model.agent import AgentConfig, AgentModel, DCTPixelTokenizer, PoseTokenizer, SamplingParams
from model.codec.dac import DACCodec
from model.data.monologue import TEXT_VOCAB, decode_text
from model.motion import IDENTITIES, rest_pose
from model.render import render_frames
from model.respond import Responder, ResponseConfig
from model.text import load_text_encoder


def _dac_44khz() -> DACCodec:
    """The paper's DAC (44.1 kHz, hop 512, 9 x 1024) as the adapter reads it from its network.

    The `dac` extra cannot be installed beside torch 2.13 (see tests/model/test_codec.py), so the
    network is replaced by its four published numbers; the adapter's own properties do the rest.
    """
    codec = DACCodec.__new__(DACCodec)
    codec.model = SimpleNamespace(sample_rate=44_100, hop_length=512, n_codebooks=9, codebook_size=1024)
    return codec


@pytest.fixture(scope="module")
def clip_768(tmp_path_factory):
    """A tiny random CLIP text tower with the paper's 768-dimensional projection, saved to disk."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    path = tmp_path_factory.mktemp("clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + " ":
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=77, projection_dim=768, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )).save_pretrained(path)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(path)
    return load_text_encoder(f"clip:{path}")


def test_the_paper_configuration_with_dac_s_frame_rate_builds_on_meta_and_pairs_with_dac(clip_768, default_codec):
    dac = _dac_44khz()
    config = AgentConfig.named("paper")
    assert config.codec_frame_rate == dac.frame_rate
    with torch.device("meta"):  # 7 B parameters: shapes only
        agent = AgentModel(config)
    responder = Responder(agent, dac, clip_768)
    assert isinstance(responder.visual, DCTPixelTokenizer)  # the tokenizer the configuration names
    assert responder.samples_per_frame == 2048  # 4 DAC frames of 512 samples per video frame
    assert responder.device.type == "meta"
    # The same agent refuses the embedded codec (96 Hz), and the tiny agent refuses DAC.
    with pytest.raises(ValueError, match="codec runs at 96.0 frames/s"):
        Responder(agent, default_codec, clip_768)
    with torch.device("meta"):
        tiny = AgentModel(AgentConfig.named("tiny"))
    with pytest.raises(ValueError, match="frames/s, the agent at 96.0"):
        Responder(tiny, dac, load_text_encoder("default"))
    # Resized to DAC's codes and rate, the tiny configuration pairs with it too.
    with torch.device("meta"):
        resized = AgentModel(AgentConfig.named("tiny").with_codec(dac))
    assert Responder(resized, dac, load_text_encoder("default")).agent.config.fps == pytest.approx(21.533, abs=1e-3)


def test_the_embedded_pair_renders_poses(default_codec):
    responder = Responder(AgentModel(AgentConfig.named("tiny")), default_codec, load_text_encoder("default"))
    assert isinstance(responder.visual, PoseTokenizer) and responder.samples_per_frame == 1000
    tokens = responder.visual.encode(rest_pose().repeat(2, 1))  # (2, L2, D)
    frames = responder.frames(tokens, identity=0, objects=())
    expected = render_frames(rest_pose().repeat(2, 1), IDENTITIES[0], (), width=640, height=360)
    assert np.array_equal(frames, expected)


def test_pixel_tokens_become_frames_of_the_response_size(default_codec):
    config = AgentConfig(visual_tokenizer="pixel", visual_tokens=32, visual_token_dim=16)
    with torch.device("meta"):
        agent = AgentModel(config)
    responder = Responder(agent, default_codec, load_text_encoder("default"))
    picture = render_frames(rest_pose()[None], IDENTITIES[1], (), width=640, height=360)  # (1, 360, 640, 3)
    tokens = responder.visual.encode(torch.from_numpy(picture).float() / 255)
    frames = responder.frames(tokens, identity=1, objects=())
    assert frames.shape == (1, 360, 640, 3) and frames.dtype == np.uint8
    # Measured: 8.3 grey levels off on average (a blurred figure); a flat frame of the picture's
    # mean colour is 30 off, so the frame really shows the picture.
    error = np.abs(frames.astype(int) - picture.astype(int)).mean()
    flat = np.abs(picture.mean() - picture.astype(float)).mean()
    assert error < 0.4 * flat, (error, flat)


def test_a_response_exposes_the_agents_inner_monologue_when_it_has_one(default_codec):
    torch.manual_seed(0)
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_key_value_heads": 1, "vocab_size": 1, "max_position_embeddings": 4096}
    wave = np.zeros(default_codec.sample_rate // 4, dtype=np.float32)
    for text_vocab in (TEXT_VOCAB, 0):
        agent = AgentModel(AgentConfig(backbone=small, diffusion_width=32, diffusion_depth=1, text_vocab=text_vocab))
        responder = Responder(agent, default_codec, load_text_encoder("default"),
                              ResponseConfig(response_seconds=0.25, width=64, height=64))
        response = responder.respond(wave, "", 0, (), SamplingParams(seed=1, diffusion_steps=2))
        if text_vocab:
            assert response.rollout.text_tokens.shape == (response.rollout.num_frames,)
            assert response.monologue == decode_text(response.rollout.text_tokens) and response.monologue
        else:
            assert response.monologue is None
