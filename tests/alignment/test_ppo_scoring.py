"""alignment.ppo.scoring against G's own log-probs, and the first-minibatch identities of PPO."""

import dataclasses

import pytest
import torch

from alignment.ppo.core import gaussian_kl, kl_k1
from alignment.ppo.scoring import RolloutBatch, evaluate, per_frame
from model.agent import AgentModel, SamplingParams


@pytest.fixture(scope="module")
def agent() -> AgentModel:
    torch.manual_seed(0)
    return AgentModel.from_pretrained("debug").eval()


def sample(agent: AgentModel, seeds, frames: int = 4, **params):
    rollouts = []
    k, r = agent.config.num_codebooks, agent.config.audio_frames_per_video_frame
    human = torch.randint(0, agent.config.codebook_size, (k, frames * r), generator=torch.Generator().manual_seed(1))
    for seed in seeds:
        rollouts.append(agent.generate(frames, SamplingParams(seed=seed, diffusion_steps=4, **params), human_audio=human))
    return rollouts


def test_evaluate_reproduces_the_models_own_log_probs(agent):
    rollouts = sample(agent, [0, 1])
    batch = RolloutBatch.from_rollouts(rollouts)
    with torch.no_grad():
        ours = evaluate(agent, batch)
        theirs = agent.log_probs(rollouts)
    torch.testing.assert_close(ours.audio_log_probs, theirs.audio)
    torch.testing.assert_close(ours.visual_log_probs, theirs.visual)
    # ... and what the streaming sampler recorded, up to the KV cache's float noise.
    torch.testing.assert_close(ours.audio_log_probs, batch.recorded_audio, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.visual_log_probs, batch.recorded_visual, atol=1e-3, rtol=1e-4)
    assert (ours.audio_entropy[batch.sampled] > 0).all() and (ours.audio_entropy[~batch.sampled] == 0).all()


def test_ratio_is_exactly_one_and_kl_zero_when_actor_equals_reference(agent):
    reference = AgentModel(agent.config)
    reference.load_state_dict(agent.state_dict())
    reference.eval()
    batch = RolloutBatch.from_rollouts(sample(agent, [3, 4]))
    with torch.no_grad():
        old, ref = evaluate(agent, batch), evaluate(reference, batch)
    new = evaluate(agent, batch)  # with gradients, as the learning phase runs it
    token_ratio = torch.exp(new.audio_log_probs - old.audio_log_probs)[batch.sampled]
    step_ratio = torch.exp(new.visual_log_probs - old.visual_log_probs)
    assert (token_ratio == 1).all() and (step_ratio == 1).all()
    audio_kl, visual_kl = per_frame(kl_k1(old.audio_log_probs, ref.audio_log_probs),
                                    gaussian_kl(old.step_mean, old.step_log_var, ref.step_mean, ref.step_log_var),
                                    agent.config.audio_frames_per_video_frame)
    assert (audio_kl == 0).all() and (visual_kl == 0).all()


def test_filler_is_excluded_from_the_audio_kl(agent):
    other = AgentModel(agent.config)
    with torch.no_grad():
        other.load_state_dict(agent.state_dict())
        other.audio_head.bias.add_(torch.randn_like(other.audio_head.bias))
    batch = RolloutBatch.from_rollouts(sample(agent, [5]))
    with torch.no_grad():
        log_ratio = kl_k1(evaluate(agent, batch).audio_log_probs, evaluate(other, batch).audio_log_probs)
    assert (log_ratio[~batch.sampled] == 0).all() and (log_ratio[batch.sampled] != 0).all()
    assert (~batch.sampled).any()  # the delay pattern's first steps hold filler for codebooks > 0


def test_top_k_sampling_still_gives_finite_ratios(agent):
    rollouts = sample(agent, [6], top_k=2)
    other = AgentModel(agent.config)
    with torch.no_grad():
        other.load_state_dict(agent.state_dict())
        other.audio_head.bias.add_(5 * torch.randn_like(other.audio_head.bias))
    batch = RolloutBatch.from_rollouts(rollouts)
    with torch.no_grad():
        assert torch.isfinite(evaluate(other, batch).audio_log_probs).all()


def test_rollouts_with_other_sampling_parameters_are_refused(agent):
    a, b = sample(agent, [0]), sample(agent, [1], audio_temperature=0.7)
    with pytest.raises(ValueError, match="share their sampling parameters"):
        RolloutBatch.from_rollouts(a + b)
    assert dataclasses.replace(a[0].params, seed=1) == sample(agent, [1])[0].params


def test_the_monologues_text_tokens_are_actions_folded_into_their_frames_first_audio_step():
    torch.manual_seed(0)
    agent = AgentModel(dataclasses.replace(AgentModel.from_pretrained("debug").config, text_vocab=6)).eval()
    with torch.no_grad():
        agent.embedder.text.weight.normal_()
    rollouts = sample(agent, [0, 1], audio_temperature=0.8)
    batch = RolloutBatch.from_rollouts(rollouts)
    r = agent.config.audio_frames_per_video_frame
    with torch.no_grad():
        ours, theirs = evaluate(agent, batch), agent.log_probs(rollouts)
    expected = theirs.audio.clone()
    expected[:, 0, ::r] += theirs.text
    torch.testing.assert_close(ours.audio_log_probs, expected)
    torch.testing.assert_close(ours.audio_log_probs, batch.recorded_audio, atol=1e-4, rtol=1e-4)
    assert (ours.audio_entropy[:, 0, ::r] > ours.audio_entropy[:, 1, ::r]).all()  # the text's entropy added there
    # Per frame, the policy's log-probability is the audio's plus the text's.
    audio_t, _ = per_frame(ours.audio_log_probs, ours.visual_log_probs, r)
    torch.testing.assert_close(audio_t, per_frame(theirs.audio, theirs.visual, r)[0] + theirs.text)
