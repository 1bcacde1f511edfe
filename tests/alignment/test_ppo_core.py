"""The PPO numerics (alignment.ppo.core, alignment.ppo.kl_control) against closed forms and Monte Carlo."""

import math

import pytest
import torch

from alignment.ppo.core import (
    categorical_entropy,
    clipped_policy_loss,
    clipped_value_loss,
    explained_variance,
    gae,
    gaussian_kl,
    gaussian_log_density,
    kl_k1,
    kl_k3,
    masked_mean,
    shape_rewards,
    whiten,
)
from alignment.ppo.kl_control import AdaptiveKLController, FixedKLController, make_kl_controller


def test_gae_equals_the_closed_form_sum_of_discounted_deltas():
    generator = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(3, 7, generator=generator), torch.randn(3, 7, generator=generator)
    gamma, lam = 0.97, 0.9
    advantages, returns = gae(rewards, values, gamma, lam)
    next_values = torch.cat([values[:, 1:], torch.zeros(3, 1)], dim=1)
    delta = rewards + gamma * next_values - values
    for t in range(7):
        expected = sum((gamma * lam) ** lag * delta[:, t + lag] for lag in range(7 - t))
        torch.testing.assert_close(advantages[:, t], expected)
    torch.testing.assert_close(returns, advantages + values)


def test_gae_with_lambda_one_gives_discounted_returns():
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    advantages, returns = gae(rewards, torch.tensor([[0.5, -1.0, 3.0]]), gamma=0.5, lam=1.0)
    torch.testing.assert_close(returns, torch.tensor([[1.0 + 0.5 * 0 + 0.25 * 2, 0 + 0.5 * 2, 2.0]]))


def test_whitening_gives_zero_mean_unit_variance_and_can_keep_the_mean():
    values = torch.tensor([[1.0, 2.0, 3.0], [10.0, -4.0, 6.0]])
    whitened = whiten(values)
    assert abs(whitened.mean().item()) < 1e-6
    assert abs(whitened.var().item() - 1) < 1e-5
    kept = whiten(values, shift_mean=False)
    torch.testing.assert_close(kept.mean(), values.mean())
    mask = torch.tensor([[True, True, True], [False, False, False]])
    torch.testing.assert_close(masked_mean(whiten(values, mask), mask), torch.tensor(0.0), atol=1e-6, rtol=0)


def test_reward_shaping_sums_to_score_minus_beta_times_the_summed_kl():
    kl = torch.rand(4, 9, generator=torch.Generator().manual_seed(1))
    scores = torch.tensor([0.5, -1.0, 2.0, 0.0])
    rewards = shape_rewards(scores, kl.clone(), beta=0.05)
    torch.testing.assert_close(rewards.sum(1), scores - 0.05 * kl.sum(1))
    torch.testing.assert_close(rewards[:, :-1], -0.05 * kl[:, :-1])


@pytest.mark.parametrize("advantage", [1.0, -1.0])
def test_clipped_policy_loss_has_zero_gradient_outside_the_clip_region(advantage):
    clip = 0.2
    # Ratios far outside [1 - clip, 1 + clip] on the side the advantage pushes towards, and inside.
    outside = math.log(1.5) if advantage > 0 else math.log(0.5)
    log_ratio = torch.tensor([outside, 0.05], requires_grad=True)
    loss, clipfrac = clipped_policy_loss(log_ratio, torch.full((2,), advantage), clip)
    loss.backward()
    assert log_ratio.grad[0] == 0
    assert log_ratio.grad[1] != 0
    assert clipfrac.item() == 0.5
    # On the other side the unclipped term keeps pulling the ratio back: the gradient is not zero.
    wrong_side = torch.tensor([-outside], requires_grad=True)
    clipped_policy_loss(wrong_side, torch.full((1,), advantage), clip)[0].backward()
    assert wrong_side.grad[0] != 0


def test_separate_clip_ranges_clip_tokens_and_diffusion_steps_independently():
    log_ratio = torch.full((4,), math.log(1.1), requires_grad=True)
    token_loss, token_clipfrac = clipped_policy_loss(log_ratio, torch.ones(4), clip=0.2)
    diffusion_loss, diffusion_clipfrac = clipped_policy_loss(log_ratio, torch.ones(4), clip=0.05)
    assert token_clipfrac.item() == 0 and diffusion_clipfrac.item() == 1
    assert torch.autograd.grad(diffusion_loss, log_ratio)[0].abs().sum() == 0
    assert torch.autograd.grad(token_loss, log_ratio)[0].abs().sum() > 0


def test_clipped_value_loss_takes_the_worse_of_clipped_and_unclipped():
    old = torch.tensor([0.0, 0.0])
    returns = torch.tensor([1.0, 1.0])
    values = torch.tensor([0.5, 2.0], requires_grad=True)
    loss, clipfrac = clipped_value_loss(values, old, returns, clip=0.2)
    # Entry 0: clipped to 0.2 -> (0.8)^2 beats (0.5)^2; entry 1: unclipped (1)^2 beats (0.8)^2.
    torch.testing.assert_close(loss, torch.tensor(0.5 * (0.64 + 1.0) / 2))
    assert clipfrac.item() == 0.5
    loss.backward()
    assert values.grad[0] == 0 and values.grad[1] > 0


def test_k3_is_non_negative_and_unbiased_on_a_known_categorical():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    q = torch.tensor([0.25, 0.25, 0.25, 0.25])
    exact = (p * (p / q).log()).sum()
    generator = torch.Generator().manual_seed(0)
    draws = torch.multinomial(p, 400_000, replacement=True, generator=generator)
    k3 = kl_k3(p.log()[draws], q.log()[draws])
    k1 = kl_k1(p.log()[draws], q.log()[draws])
    assert (k3 >= 0).all()
    assert (k1 < 0).any()  # k1 is unbiased too, but single samples go negative
    standard_error = k3.std() / math.sqrt(len(draws))
    assert abs(k3.mean() - exact) < 4 * standard_error
    assert abs(k1.mean() - exact) < 4 * k1.std() / math.sqrt(len(draws))
    # The exact expectation of k3 equals the KL.
    torch.testing.assert_close((p * kl_k3(p.log(), q.log())).sum(), exact)


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    generator = torch.Generator().manual_seed(0)
    dim = 6
    mean_p, mean_q = torch.randn(dim, generator=generator), torch.randn(dim, generator=generator)
    log_var_p, log_var_q = 0.5 * torch.randn(dim, generator=generator), 0.5 * torch.randn(dim, generator=generator)
    closed = gaussian_kl(mean_p, log_var_p, mean_q, log_var_q)
    x = mean_p + torch.exp(0.5 * log_var_p) * torch.randn(200_000, dim, generator=generator)
    log_ratio = gaussian_log_density(x, mean_p, log_var_p) - gaussian_log_density(x, mean_q, log_var_q)
    assert abs(log_ratio.mean() - closed) < 4 * log_ratio.std() / math.sqrt(len(x))
    assert gaussian_kl(mean_p, log_var_p, mean_p, log_var_p).abs() < 1e-6
    assert closed > 0


def test_categorical_entropy_handles_cut_codes():
    uniform = torch.full((4,), 0.25).log()
    torch.testing.assert_close(categorical_entropy(uniform), torch.tensor(math.log(4)))
    top2 = torch.tensor([math.log(0.5), math.log(0.5), -math.inf, -math.inf])
    torch.testing.assert_close(categorical_entropy(top2), torch.tensor(math.log(2)))


def test_explained_variance():
    returns = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(returns, returns).item() == 1
    assert abs(explained_variance(torch.full((4,), 2.5), returns).item()) < 1e-6


def test_kl_controllers():
    fixed = FixedKLController(0.01)
    fixed.update(100.0, 64)
    assert fixed.value == 0.01
    adaptive = AdaptiveKLController(0.1, target=1.0, horizon=100)
    adaptive.update(5.0, 10)  # far above target: the error is clipped to +0.2
    assert adaptive.value == pytest.approx(0.1 * (1 + 0.2 * 10 / 100))
    before = adaptive.value
    adaptive.update(0.9, 10)  # a little below target: beta falls in proportion
    assert adaptive.value == pytest.approx(before * (1 - 0.1 * 10 / 100))
    restored = make_kl_controller("adaptive", 1.0, 1.0, 100)
    restored.load_state_dict(adaptive.state_dict())
    assert restored.value == adaptive.value
    with pytest.raises(ValueError, match="unknown KL controller"):
        make_kl_controller("pid", 0.1, 1.0, 100)


def test_config_validates_at_the_edge_and_parses_from_the_command_line():
    from transformers import HfArgumentParser

    from alignment.ppo.ppo_config import PPOConfig

    (config,) = HfArgumentParser(PPOConfig).parse_args_into_dataclasses(
        ["--output_dir", "out", "--reward_model", "rm", "--kl_coef", "0.05", "--cliprange_diffusion", "0.01"])
    assert config.kl_coef == 0.05 and config.cliprange_diffusion == 0.01 and config.cliprange == 0.2
    ds = config.deepspeed_config(1e-5)
    assert ds["zero_optimization"]["stage"] == 2 and ds["train_micro_batch_size_per_gpu"] == config.mini_batch_size
    with pytest.raises(ValueError, match="must divide"):
        PPOConfig(output_dir="o", reward_model="r", batch_size=3, mini_batch_size=2)
    with pytest.raises(ValueError, match="shipped config"):
        PPOConfig(output_dir="o", reward_model="r", deepspeed="/etc/passwd")
    with pytest.raises(ValueError, match="kl_estimator"):
        PPOConfig(output_dir="o", reward_model="r", kl_estimator="k2")
