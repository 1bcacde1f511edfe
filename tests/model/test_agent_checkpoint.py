import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2Config, Qwen2Model

from model.agent import AgentBatch, AgentConfig, AgentModel, SamplingParams


def _sample(model: AgentModel, seed: int):
    human = AgentBatch.random(model.config, 1, 5, torch.Generator().manual_seed(9))
    return model.generate(5, SamplingParams(seed=seed, audio_temperature=0.9, top_k=20, diffusion_steps=4),
                          human_audio=human.human_audio[0], human_visual=human.human_visual[0],
                          prompt=human.prompt[0], trajectory=human.trajectory[0], identity=1)


@pytest.mark.parametrize("name", ["debug", "tiny"])
def test_save_load_and_sample_with_the_same_seed(tmp_path, name):
    torch.manual_seed(0)
    model = AgentModel(AgentConfig.named(name)).eval()
    card = {"data": "synthetic dialogues v1", "steps": 50, "metrics": {"loss/audio": 1.25}}
    path = model.save_pretrained(tmp_path / "agent", card=card)
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "card.json", "config.json", "model.safetensors"]
    assert json.loads((path / "card.json").read_text()) == card
    assert "synthetic dialogues v1" in (path / "README.md").read_text()
    assert AgentConfig.from_dict(json.loads((path / "config.json").read_text())) == model.config

    loaded = AgentModel.from_pretrained(str(path))
    for (name_a, a), (name_b, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name_a == name_b and torch.equal(a, b)
    first, again = _sample(model, seed=7), _sample(loaded, seed=7)
    assert torch.equal(first.audio_tokens, again.audio_tokens)
    assert torch.equal(first.visual_tokens, again.visual_tokens)
    assert not torch.equal(_sample(loaded, seed=8).audio_tokens, first.audio_tokens)


def test_pickle_checkpoints_are_refused(tmp_path):
    model = AgentModel(AgentConfig.named("debug"))
    path = model.save_pretrained(tmp_path / "agent")
    torch.save(model.state_dict(), path / "model.safetensors")  # a pickle under the safetensors name
    with pytest.raises(ValueError, match="pickle.*never unpickled"):
        AgentModel.from_pretrained(str(path))
    (path / "model.safetensors").rename(path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="pickle checkpoints are refused"):
        AgentModel.from_pretrained(str(path))
    with pytest.raises(ValueError, match="pickle checkpoints are refused"):
        AgentModel.from_pretrained(str(path / "pytorch_model.bin"))


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    model = AgentModel(AgentConfig.named("debug"))
    path = model.save_pretrained(tmp_path / "agent")
    state = load_file(path / "model.safetensors")
    state.pop("audio_head.bias")
    save_file(state, path / "model.safetensors")
    with pytest.raises(ValueError, match="(?s)do not match its config.json.*audio_head.bias"):
        AgentModel.from_pretrained(str(path))


def test_named_configurations(tmp_path):
    assert AgentModel.from_pretrained("debug").config == AgentConfig.named("debug")
    with pytest.raises(ValueError, match="not a checkpoint directory"):
        AgentModel.from_pretrained(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="unknown agent configuration"):
        AgentConfig.named("huge")
    with pytest.raises(ValueError, match="unknown AgentConfig fields"):
        AgentConfig.from_dict({"codebooks": 9})


def test_tiny_is_a_few_million_parameters_and_paper_is_qwen2_7b_scale():
    tiny = AgentModel(AgentConfig.named("tiny"))
    assert 1e6 < sum(p.numel() for p in tiny.parameters()) < 1e7
    with torch.device("meta"):  # shapes only: no memory is allocated
        paper = AgentModel(AgentConfig.named("paper"))
    # Qwen2-7B's 28 layers without its 152k-word embedding (545 M parameters the agent never reads).
    assert 6.4e9 < sum(p.numel() for p in paper.backbone.layers.parameters()) < 6.6e9
    assert paper.backbone.embed_tokens.weight.numel() == paper.config.hidden_size
    assert paper.audio_head.out_features == 9 * 1025


def test_the_frame_rate_is_derived_from_the_codec():
    tiny, paper = AgentConfig.named("tiny"), AgentConfig.named("paper")
    assert tiny.fps == 24.0  # the spectral codec's 96 Hz over R = 4
    assert paper.codec_frame_rate == 44_100 / 512 and paper.fps == pytest.approx(21.533, abs=1e-3)
    with pytest.raises(ValueError, match="codec_frame_rate must be > 0"):
        AgentConfig(codec_frame_rate=0.0)
    # A checkpoint written when fps was a field still loads, at the same frame rate.
    legacy = {**tiny.to_dict(), "fps": 24}
    legacy.pop("codec_frame_rate")
    assert AgentConfig.from_dict(legacy) == tiny


def test_backbone_starts_from_a_local_qwen2_checkpoint(tmp_path):
    qwen = Qwen2Model(Qwen2Config(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2, vocab_size=10))
    qwen.save_pretrained(tmp_path / "qwen")
    config = AgentConfig.named("debug")
    config.backbone_path = str(tmp_path / "qwen")
    model = AgentModel.from_config(config)
    assert model.config.backbone["intermediate_size"] == 96
    # Every layer comes from the checkpoint; its word embedding is dropped (inputs_embeds only).
    assert model.config.backbone["vocab_size"] == 1 and model.backbone.embed_tokens.num_embeddings == 1
    for name, tensor in qwen.state_dict().items():
        if name != "embed_tokens.weight":
            assert torch.equal(model.backbone.state_dict()[name], tensor), name
    # Its checkpoint carries the backbone weights; loading it does not need the Qwen2 directory.
    path = model.save_pretrained(tmp_path / "agent")
    (tmp_path / "qwen" / "model.safetensors").unlink()
    assert torch.equal(AgentModel.from_pretrained(str(path)).backbone.layers[0].mlp.up_proj.weight,
                       qwen.layers[0].mlp.up_proj.weight)

