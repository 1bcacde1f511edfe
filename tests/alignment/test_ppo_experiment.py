"""The PPO experiment's pieces (alignment.ppo.experiment), not a rerun of it: held-out turns are
unseen, evaluation pairs samples by seed, the paired statistic, the command line round-trips."""

import math

import pytest

from alignment.ppo.experiment import (
    HELD_OUT_QUESTIONS,
    METRIC,
    TRAIN_QUESTIONS,
    ExperimentConfig,
    Sampler,
    command_line,
    make_turns,
    paired_difference,
    parse_arguments,
)


def test_held_out_turns_ask_questions_that_neither_reward_training_nor_ppo_saw():
    train = make_turns(TRAIN_QUESTIONS, 64, 40)
    held_out = make_turns(HELD_OUT_QUESTIONS, 20, 72)
    assert {t.question for t in train}.isdisjoint({t.question for t in held_out})
    assert len(set(train)) == 64  # a second pass over the questions speaks in another voice
    assert len(set(held_out)) == 20


def test_paired_difference_pairs_samples_in_order_and_skips_what_does_not_apply():
    policy = [{"m": 0.9}, {"m": 0.5}, {"m": math.nan}]
    reference = [{"m": 0.6}, {"m": 0.3}, {"m": 0.1}]
    result = paired_difference(policy, reference, "m")
    assert result["n"] == 2
    assert result["difference"] == pytest.approx(0.25)
    assert result["stderr"] == pytest.approx(0.05)  # std 0.0707 (ddof 1) / sqrt(2)
    with pytest.raises(ValueError):
        paired_difference(policy[:2], reference, "m")  # unpaired samples are an error, not a silent cut


def test_the_same_agent_and_seed_give_the_same_metrics_and_another_seed_other_samples():
    from model.codec import load_codec
    from model.zoo import load_agent

    agent, sampler = load_agent("default"), Sampler(load_codec("default"))
    turn = make_turns(HELD_OUT_QUESTIONS, 1, 12)[0]
    first, metrics = sampler.sample(agent, turn, 1.0, 3, seed=5)
    again, metrics_again = sampler.sample(agent, turn, 1.0, 3, seed=5)
    other, _ = sampler.sample(agent, turn, 1.0, 3, seed=6)
    assert (first.audio_tokens == again.audio_tokens).all() and metrics == metrics_again
    assert not (first.visual_tokens == other.visual_tokens).all()
    assert METRIC in metrics


def test_the_reported_command_line_parses_back_to_the_same_config():
    config = ExperimentConfig(out="/tmp/x", learning_rate=4e-5, steps=32, betas=(0.01, 0.05, 0.1))
    assert parse_arguments(command_line(config).split()[3:]) == config


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="eval_frames"):
        ExperimentConfig(out="x", episode_frames=48, eval_frames=24)
    with pytest.raises(ValueError, match="rounds"):
        ExperimentConfig(out="x", rounds=2)
