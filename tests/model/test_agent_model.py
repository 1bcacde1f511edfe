"""The agent model's contracts: shapes, causality, streaming == full forward, log-probabilities."""

import math

import pytest
import torch

from model.agent import AgentBatch, AgentConfig, AgentModel, Rollout, SamplingParams, StreamingSession
from model.agent.delay_pattern import delay_valid_mask

FRAMES = 6


def make_model(name: str = "debug", seed: int = 0) -> AgentModel:
    """A model whose every parameter is random: the zero-initialised AdaLN layers get small values,
    as after some training, so the diffusion head's output depends on its inputs."""
    torch.manual_seed(seed)
    model = AgentModel(AgentConfig.named(name))
    with torch.no_grad():
        for parameter in model.diffusion.parameters():
            if not parameter.any():
                parameter.normal_(std=0.02)
    return model.eval()


@pytest.fixture(scope="module")
def model() -> AgentModel:
    return make_model()


def random_batch(config: AgentConfig, seed: int = 1, batch_size: int = 2) -> AgentBatch:
    return AgentBatch.random(config, batch_size, FRAMES, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["debug", "tiny"])
def test_output_shapes(name):
    model = make_model(name)
    c = model.config
    out = model(random_batch(c))
    steps = FRAMES * c.audio_frames_per_video_frame
    assert out.audio_logits.shape == (2, steps, c.num_codebooks, c.codebook_size + 1)
    assert out.visual_cond.shape == (2, FRAMES, c.visual_tokens, c.hidden_size)


def test_bad_batch_is_refused(model):
    batch = random_batch(model.config)
    batch.trajectory = batch.trajectory[:, :, :-1]
    with pytest.raises(ValueError, match="trajectory must have shape"):
        model(batch)
    batch = random_batch(model.config)
    batch.present = {"agent_audio": torch.ones(2, dtype=torch.bool)}
    with pytest.raises(ValueError, match="only optional inputs"):
        model(batch)


# --- causality ------------------------------------------------------------------------------------
# The rule (model.agent.model): audio step s = iR + r sees controls of frames <= i, human frames < i,
# agent visuals of frames < i and agent audio steps < s; visual conditions of frame i also see every
# audio step of frame i.

def _outputs(model, batch):
    with torch.no_grad():
        out = model(batch)
    return out.audio_logits, out.visual_cond


@pytest.mark.parametrize("j", [0, 2, FRAMES - 2])
def test_human_frame_j_only_affects_agent_frames_after_j(model, j):
    c = model.config
    r = c.audio_frames_per_video_frame
    batch = random_batch(c)
    logits, cond = _outputs(model, batch)
    changed = random_batch(c)
    changed.human_audio[:, :, j * r : (j + 1) * r] = (changed.human_audio[:, :, j * r : (j + 1) * r] + 1) % c.codebook_size
    changed.human_visual[:, j] += 1.0
    new_logits, new_cond = _outputs(model, changed)
    before = (j + 1) * r  # audio steps of frames <= j
    assert torch.equal(new_logits[:, :before], logits[:, :before])
    assert torch.equal(new_cond[:, : j + 1], cond[:, : j + 1])
    assert not torch.allclose(new_logits[:, before : before + r], logits[:, before : before + r])
    assert not torch.allclose(new_cond[:, j + 1], cond[:, j + 1])


@pytest.mark.parametrize("s", [0, 5, 9])
def test_agent_audio_step_s_only_affects_later_steps_and_its_frames_visuals(model, s):
    c = model.config
    r = c.audio_frames_per_video_frame
    batch = random_batch(c)
    logits, cond = _outputs(model, batch)
    changed = random_batch(c)
    k = 0  # codebook 0 holds a code at every step
    changed.agent_audio[:, k, s] = (changed.agent_audio[:, k, s] + 1) % c.codebook_size
    new_logits, new_cond = _outputs(model, changed)
    frame = s // r
    assert torch.equal(new_logits[:, : s + 1], logits[:, : s + 1])
    assert torch.equal(new_cond[:, :frame], cond[:, :frame])
    assert not torch.allclose(new_logits[:, s + 1], logits[:, s + 1])
    assert not torch.allclose(new_cond[:, frame], cond[:, frame])  # the frame's lips follow its voice


@pytest.mark.parametrize("j", [0, 3])
def test_agent_visual_frame_j_only_affects_later_frames(model, j):
    c = model.config
    r = c.audio_frames_per_video_frame
    batch = random_batch(c)
    logits, cond = _outputs(model, batch)
    changed = random_batch(c)
    changed.agent_visual[:, j] += 1.0
    new_logits, new_cond = _outputs(model, changed)
    assert torch.equal(new_logits[:, : (j + 1) * r], logits[:, : (j + 1) * r])
    assert torch.equal(new_cond[:, : j + 1], cond[:, : j + 1])
    assert not torch.allclose(new_logits[:, (j + 1) * r], logits[:, (j + 1) * r])


def test_trajectory_of_frame_j_does_not_reach_back(model):
    c = model.config
    r, j = c.audio_frames_per_video_frame, 3
    logits, cond = _outputs(model, random_batch(c))
    changed = random_batch(c)
    changed.trajectory[:, j] += 1.0
    new_logits, new_cond = _outputs(model, changed)
    assert torch.equal(new_logits[:, : j * r], logits[:, : j * r])
    assert torch.equal(new_cond[:, :j], cond[:, :j])
    assert not torch.allclose(new_logits[:, j * r], logits[:, j * r])


def test_missing_inputs_use_their_empty_embedding(model):
    c = model.config
    batch = random_batch(c)
    without = random_batch(c)
    without.prompt = None
    masked = random_batch(c)
    masked.prompt = torch.zeros_like(masked.prompt)  # silence-like values, but marked absent
    masked.present = {"prompt": torch.tensor([False, False])}
    logits, _ = _outputs(model, batch)
    without_logits, _ = _outputs(model, without)
    masked_logits, _ = _outputs(model, masked)
    assert torch.allclose(without_logits, masked_logits, atol=1e-6)
    assert not torch.allclose(without_logits, logits)
    # A zero prompt is not the same as no prompt.
    zero = random_batch(c)
    zero.prompt = torch.zeros_like(zero.prompt)
    assert not torch.allclose(_outputs(model, zero)[0], without_logits)


# --- streaming ------------------------------------------------------------------------------------

def _stream(model, params, human, use_cache=True, missing_frames=()):
    """Run a session over FRAMES frames of `human` (a batch of one), dropping the human's frames in
    `missing_frames`; returns the session's frame outputs and its rollout."""
    r = model.config.audio_frames_per_video_frame
    session = model.session(params, prompt=human.prompt[0], identity=int(human.identity[0]), use_cache=use_cache)
    frames = []
    for i in range(FRAMES):
        seen = i > 0 and (i - 1) not in missing_frames
        frames.append(session.step(
            human_audio=human.human_audio[0, :, (i - 1) * r : i * r] if seen else None,
            human_visual=human.human_visual[0, i - 1] if seen else None,
            trajectory=human.trajectory[0, i],
        ))
    return frames, session.rollout()


@pytest.mark.parametrize("name", ["debug", "tiny"])
def test_streaming_matches_the_full_forward(name):
    model = make_model(name)
    human = random_batch(model.config, batch_size=1)
    frames, rollout = _stream(model, SamplingParams(seed=3), human, missing_frames=(2,))
    assert rollout.present["human_audio"].tolist() == [True, True, False, True, True, False]
    with torch.no_grad():
        out = model(rollout.to_batch())
    r = model.config.audio_frames_per_video_frame
    for frame in frames:
        i = frame.index
        torch.testing.assert_close(frame.audio_logits, out.audio_logits[0, i * r : (i + 1) * r], atol=1e-4, rtol=0)
        torch.testing.assert_close(frame.visual_cond, out.visual_cond[0, i], atol=1e-4, rtol=0)


def test_no_cache_baseline_samples_the_same_tokens(model):
    human = random_batch(model.config, batch_size=1)
    _, cached = _stream(model, SamplingParams(seed=5), human)
    _, uncached = _stream(model, SamplingParams(seed=5), human, use_cache=False)
    assert torch.equal(cached.audio_tokens, uncached.audio_tokens)
    torch.testing.assert_close(cached.visual_tokens, uncached.visual_tokens, atol=1e-4, rtol=0)
    _, other_seed = _stream(model, SamplingParams(seed=6), human)
    assert not torch.equal(cached.audio_tokens, other_seed.audio_tokens)


def test_generate_delay_pattern_and_completed_codes(model):
    c = model.config
    human = random_batch(c, batch_size=1)
    frames, rollout = _stream(model, SamplingParams(seed=1), human)
    steps = FRAMES * c.audio_frames_per_video_frame
    assert rollout.audio_tokens.shape == (c.num_codebooks, steps)
    assert torch.equal(rollout.audio_sampled, delay_valid_mask(c.num_codebooks, steps))
    assert (rollout.audio_tokens[~rollout.audio_sampled] == c.special_token).all()
    assert (rollout.audio_tokens[rollout.audio_sampled] < c.special_token).all()
    # The codes a session hands out frame by frame are exactly the complete frames of the rollout.
    streamed = torch.cat([f.audio_codes for f in frames], dim=1)
    assert torch.equal(streamed, rollout.audio_codes)
    assert rollout.audio_codes.shape == (c.num_codebooks, steps - c.num_codebooks + 1)
    offline = model.generate(FRAMES, SamplingParams(seed=1), human_audio=human.human_audio[0],
                             human_visual=human.human_visual[0], prompt=human.prompt[0],
                             trajectory=human.trajectory[0], identity=int(human.identity[0]))
    assert torch.equal(offline.audio_tokens, rollout.audio_tokens)


def test_session_refuses_bad_input(model):
    session = model.session(SamplingParams())
    with pytest.raises(ValueError, match="first step has no previous human frame"):
        session.step(human_audio=torch.zeros(3, 2, dtype=torch.long))
    session.step()
    with pytest.raises(ValueError, match=r"human_audio must have shape \(3, 2\)"):
        session.step(human_audio=torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        SamplingParams(audio_temperature=0.0)


# --- log-probabilities ----------------------------------------------------------------------------

def test_recomputed_log_probs_match_the_recorded_ones(model):
    human = random_batch(model.config, batch_size=1)
    params = SamplingParams(audio_temperature=0.7, visual_temperature=0.8, top_k=10, diffusion_steps=6, seed=2)
    _, rollout = _stream(model, params, human)
    recomputed = model.log_probs(rollout)
    assert recomputed.audio.shape == rollout.audio_log_probs.shape
    assert recomputed.visual.shape == rollout.visual_log_probs.shape == (FRAMES, 5, model.config.visual_tokens)
    ratio_audio = torch.exp(recomputed.audio - rollout.audio_log_probs)
    ratio_visual = torch.exp(recomputed.visual - rollout.visual_log_probs)
    torch.testing.assert_close(ratio_audio, torch.ones_like(ratio_audio), atol=1e-4, rtol=0)
    torch.testing.assert_close(ratio_visual, torch.ones_like(ratio_visual), atol=1e-4, rtol=0)
    assert (rollout.audio_log_probs[rollout.audio_sampled] < 0).all()
    # Every sampled code is one of the top k of its logits.
    with torch.no_grad():
        logits = model(rollout.to_batch()).audio_logits[0].transpose(0, 1)[..., :-1]  # (K, S, V)
    top = logits.topk(10, dim=-1).indices
    sampled_tokens = rollout.audio_tokens.clamp(max=model.config.codebook_size - 1)
    in_top = (top == sampled_tokens[..., None]).any(-1)
    assert in_top[rollout.audio_sampled].all()


def test_log_probs_follow_the_temperature(model):
    human = random_batch(model.config, batch_size=1)
    _, rollout = _stream(model, SamplingParams(seed=4), human)
    with torch.no_grad():
        logits = model(rollout.to_batch()).audio_logits[0].transpose(0, 1)[..., :-1]  # (K, S, V)
        by_temperature = {t: model.log_probs(rollout, SamplingParams(audio_temperature=t, visual_temperature=t))
                          for t in (1.0, 2.0, 3.0)}
    tokens = rollout.audio_tokens.clamp(max=model.config.codebook_size - 1)
    sampled = rollout.audio_sampled
    for t, lp in by_temperature.items():
        # Audio: log softmax(logits / T) at the sampled code, computed another way.
        expected = logits.gather(-1, tokens[..., None])[..., 0] / t - torch.logsumexp(logits / t, dim=-1)
        torch.testing.assert_close(lp.audio[sampled], expected[sampled], atol=1e-4, rtol=0)
    assert not torch.allclose(by_temperature[1.0].audio[sampled], by_temperature[2.0].audio[sampled])
    # Visual: a step's log-density at temperature T is A - D log T - B / T^2 for fixed A, B.
    # Solve A, B from T = 1 and T = 2, then predict T = 3.
    d = model.config.visual_token_dim
    l1, l2, l3 = (by_temperature[t].visual for t in (1.0, 2.0, 3.0))
    b = (d * math.log(2.0) - (l1 - l2)) / (1 - 1 / 4)
    a = l1 + b
    torch.testing.assert_close(l3, a - d * math.log(3.0) - b / 9, atol=1e-3, rtol=1e-5)
    assert (b > 0).all()


def test_a_session_continued_from_a_rollout_still_matches_the_full_forward(model):
    human = random_batch(model.config, batch_size=1)
    r = model.config.audio_frames_per_video_frame
    prefix = model.generate(3, SamplingParams(seed=1), human_audio=human.human_audio[0],
                            human_visual=human.human_visual[0], prompt=human.prompt[0],
                            trajectory=human.trajectory[0], identity=int(human.identity[0]))
    session = StreamingSession.from_rollout(model, prefix, SamplingParams(seed=2))
    frames = [session.step(human_audio=human.human_audio[0, :, (i - 1) * r : i * r],
                           human_visual=human.human_visual[0, i - 1], trajectory=human.trajectory[0, i])
              for i in range(3, FRAMES)]
    rollout = session.rollout()
    assert torch.equal(rollout.audio_tokens[:, : 3 * r], prefix.audio_tokens)
    assert torch.equal(rollout.human_audio[:, : (FRAMES - 1) * r], human.human_audio[0, :, : (FRAMES - 1) * r])
    with torch.no_grad():
        out = model(rollout.to_batch())
    for frame in frames:
        i = frame.index
        torch.testing.assert_close(frame.audio_logits, out.audio_logits[0, i * r : (i + 1) * r], atol=1e-4, rtol=0)
        torch.testing.assert_close(frame.visual_cond, out.visual_cond[0, i], atol=1e-4, rtol=0)
    recomputed = model.log_probs(rollout)
    torch.testing.assert_close(recomputed.audio, rollout.audio_log_probs, atol=1e-4, rtol=0)


def _continued(model, human, first: SamplingParams, then: SamplingParams, split: int = 3):
    """A rollout of FRAMES frames: `split` frames under `first`, the rest continued under `then`."""
    r = model.config.audio_frames_per_video_frame
    prefix = model.generate(split, first, human_audio=human.human_audio[0], human_visual=human.human_visual[0],
                            prompt=human.prompt[0], trajectory=human.trajectory[0], identity=int(human.identity[0]))
    session = StreamingSession.from_rollout(model, prefix, then)
    for i in range(split, FRAMES):
        session.step(human_audio=human.human_audio[0, :, (i - 1) * r : i * r],
                     human_visual=human.human_visual[0, i - 1], trajectory=human.trajectory[0, i])
    return session.rollout()


def test_a_continued_rollout_scores_every_segment_under_the_parameters_that_sampled_it(model):
    human = random_batch(model.config, batch_size=1)
    first = SamplingParams(audio_temperature=0.6, visual_temperature=0.7, top_k=5, diffusion_steps=4, seed=1)
    then = SamplingParams(audio_temperature=1.4, visual_temperature=1.3, diffusion_steps=4, seed=2)
    rollout = _continued(model, human, first, then)
    assert rollout.params == first and rollout.continued == ((3, then),)
    assert rollout.segments() == [(0, 3, first), (3, FRAMES, then)]
    recomputed = model.log_probs(rollout)
    torch.testing.assert_close(recomputed.audio, rollout.audio_log_probs, atol=1e-4, rtol=0)
    torch.testing.assert_close(recomputed.audio_sampling, rollout.audio_sampling_log_probs, atol=1e-4, rtol=0)
    torch.testing.assert_close(recomputed.visual, rollout.visual_log_probs, atol=1e-3, rtol=1e-5)
    # Scoring the whole rollout under the continuation's parameters (the old behaviour) is wrong
    # on the prefix and right on the continuation.
    r = model.config.audio_frames_per_video_frame
    as_one = model.log_probs(rollout, then)
    assert not torch.allclose(as_one.audio[:, : 3 * r], rollout.audio_log_probs[:, : 3 * r], atol=1e-3)
    torch.testing.assert_close(as_one.audio[:, 3 * r :], rollout.audio_log_probs[:, 3 * r :], atol=1e-4, rtol=0)
    # The segments survive the rollout file, and a continuation cannot change the denoising steps.
    from model.rollout_store import rollout_from_bytes, rollout_to_bytes

    stored = rollout_from_bytes(rollout_to_bytes(rollout))
    assert stored.segments() == rollout.segments()
    assert torch.equal(stored.audio_sampling_log_probs, rollout.audio_sampling_log_probs)
    with pytest.raises(ValueError, match="denoising steps"):
        StreamingSession.from_rollout(model, rollout, SamplingParams(diffusion_steps=6))


def test_top_k_samples_get_finite_log_ratios_under_other_weights(model):
    """Under other weights a top-k sample can fall outside their top k: its sampling-distribution
    log-prob is -inf there, while the full-distribution one (what PPO uses) stays finite."""
    human = random_batch(model.config, batch_size=1)
    params = SamplingParams(audio_temperature=0.8, top_k=2, diffusion_steps=4, seed=3)
    _, rollout = _stream(model, params, human)
    other = make_model(seed=1)  # the same configuration, different weights (a policy after updates)
    with torch.no_grad():
        scored = other.log_probs(rollout)
    sampled = rollout.audio_sampled
    assert torch.isneginf(scored.audio_sampling[sampled]).any()  # the failure the full distribution avoids
    log_ratio = scored.audio[sampled] - rollout.audio_log_probs[sampled]
    assert torch.isfinite(log_ratio).all()
    assert (log_ratio.abs() > 1e-3).any()  # the weights really differ
    assert torch.isfinite(scored.visual - rollout.visual_log_probs).all()
    # Under the sampling weights the full-distribution log-prob is below the top-k one (mass outside
    # the top k is counted) and both are recomputed exactly.
    assert (rollout.audio_log_probs[sampled] < rollout.audio_sampling_log_probs[sampled]).all()
    mine = model.log_probs(rollout)
    torch.testing.assert_close(mine.audio_sampling, rollout.audio_sampling_log_probs, atol=1e-4, rtol=0)


def test_batched_log_probs_equal_single_ones_across_mixed_inputs_and_parameters(model):
    human = random_batch(model.config, batch_size=1)
    _, with_human = _stream(model, SamplingParams(audio_temperature=0.9, seed=1), human, missing_frames=(1,))
    bare = model.generate(FRAMES, SamplingParams(audio_temperature=1.3, top_k=7, seed=2))  # no human, no controls
    batched = model.log_probs([with_human, bare])
    for i, rollout in enumerate([with_human, bare]):
        single = model.log_probs(rollout)
        torch.testing.assert_close(batched.audio[i], single.audio, atol=1e-5, rtol=0)
        torch.testing.assert_close(batched.audio_sampling[i], single.audio_sampling, atol=1e-5, rtol=0)
        torch.testing.assert_close(batched.visual[i], single.visual, atol=1e-4, rtol=0)
        torch.testing.assert_close(batched.audio[i], rollout.audio_log_probs, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="denoising steps"):
        model.log_probs([with_human, model.generate(FRAMES, SamplingParams(diffusion_steps=4, seed=3))])


def _rollout_on(config, device, seed: int, params: SamplingParams) -> Rollout:
    """A rollout built from random tensors on `device`, as a PPO batch moved there would be."""
    batch = AgentBatch.random(config, 1, FRAMES, torch.Generator().manual_seed(seed), device=device)
    steps = FRAMES * config.audio_frames_per_video_frame
    sampled = delay_valid_mask(config.num_codebooks, steps, device=device)
    chain = torch.randn(FRAMES, params.diffusion_steps + 1, config.visual_tokens, config.visual_token_dim,
                        generator=torch.Generator().manual_seed(seed)).to(device)
    return Rollout(
        audio_tokens=batch.agent_audio[0], audio_log_probs=torch.zeros(config.num_codebooks, steps, device=device),
        audio_sampled=sampled, visual_tokens=chain[:, -1], visual_chain=chain,
        visual_log_probs=torch.zeros(FRAMES, params.diffusion_steps - 1, config.visual_tokens, device=device),
        params=params, human_audio=batch.human_audio[0], prompt=batch.prompt[0], identity=1,
        present={"human_audio": torch.arange(FRAMES, device=device) != 2},
        continued=((4, SamplingParams(audio_temperature=1.5, visual_temperature=0.5, top_k=3,
                                      diffusion_steps=params.diffusion_steps)),),
    )


DEVICES = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_batched_log_probs_run_with_every_tensor_on_the_rollouts_device(device):
    """The PPO path on another device: batch masks, time features, diffusion schedules and
    per-frame temperatures are all created where the rollouts are (a CPU tensor would fail)."""
    config = AgentConfig.named("debug")
    with torch.device(device):
        model = AgentModel(config)
    params = SamplingParams(audio_temperature=0.8, top_k=5, diffusion_steps=4)
    rollouts = [_rollout_on(config, device, seed, params) for seed in (1, 2)]
    scored = model.log_probs(rollouts)
    steps = FRAMES * config.audio_frames_per_video_frame
    assert scored.audio.shape == scored.audio_sampling.shape == (2, config.num_codebooks, steps)
    assert scored.visual.shape == (2, FRAMES, 3, config.visual_tokens)
    for tensor in (scored.audio, scored.audio_sampling, scored.visual):
        assert tensor.device.type == device
    batch = AgentBatch.concat([r.to_batch() for r in rollouts])
    assert all(mask.device.type == device for mask in batch.present.values())
    losses = model.loss(batch)
    assert losses["loss"].device.type == device
