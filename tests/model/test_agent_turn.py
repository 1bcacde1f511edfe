"""The turn feature (model.agent.inputs.turn_buckets): its exact values, and a streaming session that
computes it frame by frame agrees with the full forward, continued from a rollout or not."""

import dataclasses

import torch

from model.agent import AgentConfig, AgentModel, SamplingParams, StreamingSession
from model.agent.inputs import turn_buckets

FRAMES = 12


def test_turn_buckets_count_the_frames_since_the_humans_last_loud_frame():
    quiet = torch.tensor([[1, 1, 0, 0, 1, 1, 1, 1, 0, 1]], dtype=torch.bool)
    assert turn_buckets(quiet, buckets=4).tolist() == [[0, 0, 1, 1, 2, 3, 3, 3, 1, 2]]


def _model() -> AgentModel:
    torch.manual_seed(0)
    config = dataclasses.replace(AgentConfig.named("debug"), turn_buckets=5, quiet_codes=[0, 1])
    model = AgentModel(config).eval()
    with torch.no_grad():
        model.embedder.turn.weight.normal_()  # zero at first; random here so the feature matters
    return model


def _human(config: AgentConfig) -> torch.Tensor:
    """Human codes (K, FRAMES * R): quiet, speech in frames 2-5, quiet again."""
    r = config.audio_frames_per_video_frame
    codes = torch.randint(2, config.codebook_size, (config.num_codebooks, FRAMES * r), generator=torch.Generator().manual_seed(1))
    codes[0, : 2 * r] = 0
    codes[0, 6 * r:] = 1
    return codes


def test_a_session_with_the_turn_feature_matches_the_full_forward_and_its_continuation():
    model = _model()
    c, r = model.config, model.config.audio_frames_per_video_frame
    human = _human(c)
    rollout = model.generate(FRAMES, SamplingParams(seed=3), human_audio=human, identity=0)
    recomputed = model.log_probs(rollout)
    torch.testing.assert_close(recomputed.audio, rollout.audio_log_probs, atol=1e-4, rtol=0)
    session = StreamingSession.from_rollout(model, model.generate(7, SamplingParams(seed=3), human_audio=human,
                                                                  identity=0))
    for i in range(7, FRAMES):
        session.step(human_audio=human[:, (i - 1) * r: i * r])
    continued = session.rollout()
    torch.testing.assert_close(model.log_probs(continued).audio, continued.audio_log_probs, atol=1e-4, rtol=0)
    without = dataclasses.replace(c, turn_buckets=0, quiet_codes=[])
    plain = AgentModel(without).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("embedder.turn.")})
    assert not torch.allclose(plain.log_probs(rollout).audio, recomputed.audio)
