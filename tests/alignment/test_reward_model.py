"""The reward model: built from G, scores every head, padding-invariant, saved and refused safely."""

import json
import math

import pytest
import torch

from alignment.reward import OVERALL, BackboneMismatch, RewardModel, check_backbone, pad_batches, preference_loss
from alignment.reward.loss import accuracy
from model.agent import AgentBatch, AgentConfig, AgentModel

DIMENSIONS = ("speaking", "listening")


@pytest.fixture(scope="module")
def agent() -> AgentModel:
    torch.manual_seed(0)
    return AgentModel(AgentConfig.named("debug")).eval()


@pytest.fixture(scope="module")
def reward(agent) -> RewardModel:
    torch.manual_seed(1)
    return RewardModel.from_agent(agent, DIMENSIONS)


def test_from_agent_copies_backbone_and_embeddings_and_drops_next_token_heads(agent, reward):
    state = reward.state_dict()
    for name, value in agent.state_dict().items():
        if name.startswith(("backbone.", "embedder.")):
            assert torch.equal(state["trunk." + name], value), name
    assert not any(name.startswith(("trunk.audio_head", "trunk.diffusion")) for name in state)
    assert reward.head_names == (OVERALL, *DIMENSIONS)
    assert not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in reward.modules())


def test_head_init_std_is_one_over_sqrt_d_plus_one():
    torch.manual_seed(0)
    config = AgentConfig.named("debug")
    config.backbone = {**config.backbone, "hidden_size": 256, "num_attention_heads": 4}
    model = RewardModel(config, tuple(f"d{i}" for i in range(15)))
    weights = torch.cat([head.weight.flatten() for head in model.heads.values()])  # 16 * 256 draws
    assert weights.std().item() == pytest.approx(1 / math.sqrt(257), rel=0.05)
    assert all(torch.equal(head.bias, torch.zeros(1)) for head in model.heads.values())


def test_scores_have_every_head_and_padding_does_not_change_a_clip(reward):
    config = reward.config
    g = torch.Generator().manual_seed(3)
    short, long = AgentBatch.random(config, 1, 3, g), AgentBatch.random(config, 1, 6, g)
    alone = {name: torch.cat([a, b]) for name, (a, b) in
             {n: (reward.scores(short)[n], reward.scores(long)[n]) for n in reward.head_names}.items()}
    batch, lengths = pad_batches([short, long], config.special_token)
    assert batch.num_frames == 6 and lengths.tolist() == [3, 6]
    together = reward.scores(batch, lengths)
    assert list(together) == [OVERALL, *DIMENSIONS]
    for name in reward.head_names:
        assert together[name].shape == (2,)
        torch.testing.assert_close(together[name], alone[name], atol=1e-5, rtol=1e-5)


def test_initial_loss_is_about_ln2_and_identical_pairs_give_exactly_ln2(reward):
    g = torch.Generator().manual_seed(4)
    chosen = AgentBatch.random(reward.config, 16, 3, g)
    rejected = AgentBatch.random(reward.config, 16, 3, g)
    targets = {name: torch.ones(16) for name in reward.head_names}
    masks = {name: torch.ones(16, dtype=torch.bool) for name in reward.head_names}
    with torch.no_grad():
        c, r = reward.scores(chosen), reward.scores(rejected)
    loss, _ = preference_loss(c, r, targets, masks)
    assert loss.item() == pytest.approx(math.log(2), abs=0.1)
    same, parts = preference_loss(c, c, targets, masks)
    assert same.item() == pytest.approx(math.log(2), abs=1e-7)
    assert all(part.loss.item() == pytest.approx(math.log(2), abs=1e-7) for part in parts.values())


def test_accuracy_of_swapped_pairs_sums_to_one():
    g = torch.Generator().manual_seed(5)
    c, r = torch.randn(100, generator=g), torch.randn(100, generator=g)
    r[:10] = c[:10]  # equal scores count one half either way
    ones, mask = torch.ones(100), torch.ones(100, dtype=torch.bool)
    forward, backward = accuracy(c - r, ones, mask), accuracy(r - c, ones, mask)
    assert 0 < forward.item() < 1
    assert forward.item() + backward.item() == pytest.approx(1.0, abs=1e-6)


def test_ties_pull_together_and_unlabelled_pairs_train_nothing(reward):
    c = torch.tensor([2.0, 0.0, 1.0], requires_grad=True)
    r = torch.tensor([0.0, 0.0, 0.0], requires_grad=True)
    target = torch.tensor([0.5, 1.0, 1.0])
    mask = torch.tensor([True, True, False])  # the third is "both bad" on this head
    loss, parts = preference_loss({"x": c}, {"x": r}, {"x": target}, {"x": mask})
    loss.backward()
    assert c.grad[0] > 0  # a tie with chosen ahead pushes chosen down
    assert c.grad[2] == 0 and r.grad[2] == 0
    assert parts["x"].labelled.item() == 2 and parts["x"].decisive.item() == 1
    assert parts["x"].accuracy.item() == 0.5  # the decisive pair has equal scores


def test_normalise_makes_reference_scores_mean_zero(reward):
    model = RewardModel(reward.config, DIMENSIONS)
    model.load_state_dict(reward.state_dict())
    g = torch.Generator().manual_seed(6)
    reference = [(AgentBatch.random(model.config, 4, 3, g), None) for _ in range(2)]
    model.normalise(reference)
    with torch.no_grad():
        values = torch.cat([model(batch) for batch, _ in reference])
    torch.testing.assert_close(values.mean(0), torch.zeros(len(model.head_names)), atol=1e-5, rtol=0)


def test_save_and_load_round_trip_with_card(reward, tmp_path):
    reward.save_pretrained(tmp_path / "rm", card={"data": {"snapshot_sha256": "ab" * 32}})
    loaded = RewardModel.from_pretrained(tmp_path / "rm")
    batch = AgentBatch.random(reward.config, 2, 3, torch.Generator().manual_seed(7))
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), reward(batch))
    card = json.loads((tmp_path / "rm" / "card.json").read_text())
    assert card["data"]["snapshot_sha256"] == "ab" * 32 and card["kind"] == "reward-model"


def test_a_backbone_that_does_not_match_the_agent_is_refused(reward, agent, tmp_path):
    reward.save_pretrained(tmp_path / "rm")
    agent.save_pretrained(tmp_path / "same")
    other = AgentConfig.named("debug")
    other.backbone = {**other.backbone, "num_hidden_layers": 3}
    AgentModel(other).save_pretrained(tmp_path / "other")
    check_backbone(tmp_path / "rm", tmp_path / "same")
    assert RewardModel.from_pretrained(tmp_path / "rm", agent=tmp_path / "same").dimensions == DIMENSIONS
    with pytest.raises(BackboneMismatch, match="num_hidden_layers"):
        RewardModel.from_pretrained(tmp_path / "rm", agent=tmp_path / "other")


def test_a_pickle_reward_checkpoint_is_refused(reward, tmp_path):
    reward.save_pretrained(tmp_path / "rm")
    torch.save(reward.state_dict(), tmp_path / "rm" / "model.safetensors")
    with pytest.raises(ValueError, match="never unpickled"):
        RewardModel.from_pretrained(tmp_path / "rm")
