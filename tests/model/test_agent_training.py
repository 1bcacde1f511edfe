import torch

from model.agent import AgentBatch, AgentConfig, AgentModel
from model.agent.delay_pattern import delay_valid_mask
from tests.model.conftest import overfit


def _batch(config: AgentConfig) -> AgentBatch:
    batch = AgentBatch.random(config, batch_size=2, frames=8, generator=torch.Generator().manual_seed(0))
    # The second clip lacks its prompt, identity and some frames of trajectory and human video, so
    # every empty embedding is trained too.
    batch.present = {
        "prompt": torch.tensor([True, False]),
        "identity": torch.tensor([True, False]),
        "trajectory": torch.tensor([[True] * 8, [True] * 4 + [False] * 4]),
        "human_visual": torch.tensor([[True] * 8, [False] * 3 + [True] * 5]),
    }
    return batch


def _losses(model: AgentModel, batch: AgentBatch) -> dict[str, float]:
    torch.manual_seed(123)  # the same diffusion timesteps and noise at every evaluation
    with torch.no_grad():
        return {name: value.item() for name, value in model.loss(batch).items()}


def test_audio_loss_is_cross_entropy_over_the_valid_delay_positions_only():
    torch.manual_seed(0)
    model = AgentModel(AgentConfig.named("debug"))
    c = model.config
    batch = _batch(c)
    with torch.no_grad():
        logits = model(batch).audio_logits  # (B, S, K, V + 1)
        steps = batch.agent_audio.shape[-1]
        valid = delay_valid_mask(c.num_codebooks, steps).T.expand(2, -1, -1)  # (B, S, K)
        targets = batch.agent_audio.transpose(1, 2)
        expected = torch.nn.functional.cross_entropy(logits[valid], targets[valid])
        everywhere = torch.nn.functional.cross_entropy(logits.flatten(0, 2), targets.flatten())
    actual = model.loss(batch)["audio"].item()
    assert abs(actual - expected.item()) < 1e-5
    assert abs(actual - everywhere.item()) > 1e-3  # the invalid triangle would change the loss


def test_fifty_steps_lower_both_losses_and_train_every_used_parameter():
    torch.manual_seed(0)
    model = AgentModel(AgentConfig.named("debug"))
    batch = _batch(model.config)
    before = _losses(model, batch)
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    overfit(model, batch, 50)
    after = _losses(model, batch)
    assert after["audio"] < 0.5 * before["audio"], (before, after)
    assert after["diffusion"] < 0.8 * before["diffusion"], (before, after)
    # The backbone's token embedding is the only unused parameter: the model feeds inputs_embeds.
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, initial[name])]
    assert unchanged == ["backbone.embed_tokens.weight"]
