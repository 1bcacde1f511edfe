"""Temperature keeps the decision to speak (model.agent.sampling.tempered_log_softmax): with quiet
codes, codebook 0's mass on them stays at its temperature-1 value whatever the temperature, the
codes within each group follow the temperature, and a session's recorded log-probabilities are
still exactly what AgentModel.log_probs and PPO's scoring recompute."""

import dataclasses

import pytest
import torch

from model.agent import AgentConfig, AgentModel, SamplingParams
from model.agent.sampling import quiet_mask, tempered_log_softmax

QUIET = [0, 1, 2]


def _logits(rows: int = 6, codes: int = 50) -> torch.Tensor:
    logits = torch.randn(rows, codes, generator=torch.Generator().manual_seed(0)) * 2
    logits[:, 0] += 6.0  # one peaked silence code, as in a listening agent's codebook 0
    return logits


@pytest.mark.parametrize("temperature", [0.5, 0.7, 1.3])
def test_the_quiet_mass_keeps_its_temperature_one_value_and_the_groups_are_tempered(temperature):
    logits = _logits()
    quiet = torch.zeros(logits.shape[-1], dtype=torch.bool)
    quiet[QUIET] = True
    natural = torch.softmax(logits, -1)
    tempered = tempered_log_softmax(logits, temperature, quiet).exp()
    torch.testing.assert_close(tempered.sum(-1), torch.ones(len(logits)))
    torch.testing.assert_close(tempered[:, quiet].sum(-1), natural[:, quiet].sum(-1))
    plain = torch.softmax(logits / temperature, -1)
    for group in (quiet, ~quiet):  # within a group: the plainly tempered distribution, renormalised
        torch.testing.assert_close(tempered[:, group] / tempered[:, group].sum(-1, keepdim=True),
                                   plain[:, group] / plain[:, group].sum(-1, keepdim=True))
    # The plain temperature would move the quiet mass: the case this exists for.
    assert not torch.allclose(plain[:, quiet].sum(-1), natural[:, quiet].sum(-1), atol=1e-3)


def test_without_quiet_codes_or_at_temperature_one_it_is_the_plain_tempered_softmax():
    logits = _logits()
    no_quiet = torch.zeros(logits.shape[-1], dtype=torch.bool)
    torch.testing.assert_close(tempered_log_softmax(logits, 0.7, no_quiet), torch.log_softmax(logits / 0.7, -1))
    torch.testing.assert_close(tempered_log_softmax(logits, 0.7, None), torch.log_softmax(logits / 0.7, -1))
    quiet = torch.zeros(logits.shape[-1], dtype=torch.bool)
    quiet[QUIET] = True
    torch.testing.assert_close(tempered_log_softmax(logits, 1.0, quiet), torch.log_softmax(logits, -1))


def test_rows_without_quiet_codes_have_finite_gradients():
    mask = quiet_mask(QUIET, num_codebooks=3, codebook_size=50)  # only codebook 0 has quiet codes
    assert mask[0, QUIET].all() and mask.sum() == len(QUIET)
    logits = _logits(rows=3).requires_grad_()
    tempered_log_softmax(logits, 0.7, mask).gather(-1, torch.tensor([[0], [5], [7]])).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_a_session_with_quiet_codes_records_what_the_full_forward_and_ppo_scoring_recompute():
    from alignment.ppo.scoring import RolloutBatch, evaluate

    torch.manual_seed(0)
    model = AgentModel(dataclasses.replace(AgentConfig.named("debug"), quiet_codes=QUIET)).eval()
    assert model.audio_quiet is not None and "audio_quiet" not in model.state_dict()
    params = SamplingParams(audio_temperature=0.6, diffusion_steps=3, seed=2)
    rollout = model.generate(8, params)
    recomputed = model.log_probs(rollout)
    torch.testing.assert_close(recomputed.audio, rollout.audio_log_probs, atol=1e-4, rtol=0)
    scored = evaluate(model, RolloutBatch.from_rollouts([rollout]), with_entropy=False)
    torch.testing.assert_close(scored.audio_log_probs[0], rollout.audio_log_probs, atol=1e-4, rtol=0)
    # The same tokens under the plain tempered softmax score differently: the mask was used.
    plain = AgentModel(dataclasses.replace(model.config, quiet_codes=[])).eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain.log_probs(rollout).audio, rollout.audio_log_probs, atol=1e-3)


def test_quiet_codes_outside_the_codebook_are_refused_with_the_config():
    with pytest.raises(ValueError, match="quiet_codes must be codes in"):
        dataclasses.replace(AgentConfig.named("debug"), quiet_codes=[0, 10_000])
