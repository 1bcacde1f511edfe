"""The inner monologue (AgentConfig.text_vocab): the corpus's text tokens, an agent with the text
stream off that is exactly the agent before it, and with it on: causality, streaming == full
forward, log-probabilities, the loss, rollouts on disk and growing a checkpoint."""

import dataclasses
from pathlib import Path

import pytest
import torch

from model.agent import AgentBatch, AgentConfig, AgentModel, SamplingParams, StreamingSession
from model.agent.sampling import text_log_distribution
from model.data.dialogue import DialogueConfig, generate_clip
from model.data.monologue import LEAD_FRAMES, PAD, TEXT_VOCAB, decode_text, encode_text, normalise, text_tokens
from model.rollout_store import rollout_from_bytes, rollout_to_bytes
from model.text import load_text_encoder
from model.train.corpus import ClipCollator, build_corpus
from model.train.sft import initial_agent
from tests.model.conftest import overfit

FRAMES = 6
OLD_ROLLOUT = Path(__file__).parent / "data" / "rollout_v2_debug.safetensors"  # written before the text stream


def _debug(text_vocab: int = TEXT_VOCAB) -> AgentModel:
    torch.manual_seed(0)
    model = AgentModel(dataclasses.replace(AgentConfig.named("debug"), text_vocab=text_vocab)).eval()
    with torch.no_grad():
        model.embedder.text.weight.normal_()  # zero at first; random here so the text matters
        for parameter in model.diffusion.parameters():
            if not parameter.any():
                parameter.normal_(std=0.02)
    return model


@pytest.fixture(scope="module")
def model() -> AgentModel:
    return _debug()


def _human(config: AgentConfig, frames: int = FRAMES) -> torch.Tensor:
    return torch.randint(0, config.codebook_size, (config.num_codebooks, frames * config.audio_frames_per_video_frame),
                         generator=torch.Generator().manual_seed(1))


# --- the corpus's text ----------------------------------------------------------------------------

def test_the_vocabulary_spells_lower_case_text_and_pad_is_nothing():
    assert TEXT_VOCAB == 44 and PAD == 0
    assert normalise("  Hello!  It's 3 o'clock;  ") == "hello! it's 3 o'clock"
    assert decode_text([PAD, *encode_text("Two plus two."), PAD]) == "two plus two."


@pytest.fixture(scope="module")
def plain_and_interrupted(default_codec):
    plain = DialogueConfig(interruption_share=0.0, backchannel_share=0.0)
    cut = DialogueConfig(interruption_share=1.0, manipulation_share=0.0)
    return (generate_clip(0, default_codec, plain), plain), (generate_clip(0, default_codec, cut), cut)


def test_a_clips_text_spells_its_answer_in_order_a_lead_ahead_of_the_voice_and_pad_elsewhere(plain_and_interrupted):
    (clip, config), _ = plain_and_interrupted
    tokens = text_tokens(clip, config)
    assert tokens.shape == (clip.num_frames,) and torch.equal(tokens, text_tokens(clip, config))  # deterministic
    assert decode_text(tokens) == normalise(clip.answer)
    said = (tokens != PAD).nonzero()[:, 0]
    first, end = clip.agent_span
    assert said.numel() == len(normalise(clip.answer))
    assert said[0] >= first - LEAD_FRAMES and said[-1] < end - LEAD_FRAMES
    voiced = (clip.agent_loudness > 10 ** (config.loudness_floor_db / 20)).nonzero()[:, 0]  # espeak's pauses excluded
    assert said[0] == voiced[0] - LEAD_FRAMES and voiced[-1] - 2 <= said[-1] + LEAD_FRAMES <= voiced[-1]
    assert (tokens[: first - LEAD_FRAMES] == PAD).all() and (tokens[end - LEAD_FRAMES:] == PAD).all()


def test_an_interrupted_answers_text_stops_where_its_voice_stops(plain_and_interrupted):
    _, (clip, config) = plain_and_interrupted
    assert clip.overlap == "interruption"
    tokens = text_tokens(clip, config)
    said, answer = decode_text(tokens), normalise(clip.answer)
    assert 0 < len(said) < len(answer) and answer.startswith(said)
    assert (tokens[clip.agent_span[1] - LEAD_FRAMES:] == PAD).all()
    # Spread at the whole answer's pace: the human cuts in 30-60% into it, the agent stops 0.15-0.3 s later.
    assert 0.25 < len(said) / len(answer) < 0.8


def test_training_batches_carry_the_monologue_padded_with_pad(default_codec):
    config = dataclasses.replace(AgentConfig.named("tiny"), text_vocab=TEXT_VOCAB)
    clips = build_corpus(range(2), default_codec, load_text_encoder("default"), config, progress=False)
    batch = ClipCollator(config, window_frames=10_000, prompt_dropout=0.0, visual=False)(clips)["batch"]
    for row, clip in zip(batch.agent_text, clips):
        assert decode_text(row) == decode_text(clip.text) and torch.equal(row[: clip.num_frames], clip.text)
        assert (row[clip.num_frames:] == PAD).all()
    assert build_corpus(range(1), default_codec, load_text_encoder("default"), AgentConfig.named("tiny"),
                        progress=False)[0].text is None


# --- off: exactly the agent before ----------------------------------------------------------------

def test_with_the_text_stream_off_the_agent_is_the_one_before_it():
    """Keys, samples and log-probabilities recorded from the code before the text stream existed."""
    assert AgentConfig().text_vocab == 0
    torch.manual_seed(0)
    model = AgentModel(AgentConfig.named("debug")).eval()
    assert len(model.state_dict()) == 74 and not [k for k in model.state_dict() if "text" in k]
    rollout = model.generate(6, SamplingParams(seed=3, top_k=8, diffusion_steps=3), human_audio=_human(model.config),
                             identity=1)
    assert rollout.audio_tokens.tolist() == [[5, 10, 5, 31, 2, 11, 3, 8, 15, 25, 9, 28],
                                             [32, 12, 11, 19, 31, 15, 12, 20, 17, 0, 27, 22],
                                             [32, 32, 20, 7, 25, 29, 2, 21, 14, 17, 30, 27]]
    assert rollout.audio_log_probs.sum().item() == pytest.approx(-97.96597, abs=1e-3)
    assert rollout.visual_log_probs.sum().item() == pytest.approx(-14.25723, abs=1e-3)
    assert rollout.text_tokens is None and model.log_probs(rollout).text is None
    losses = model.loss(AgentBatch.random(model.config, 2, FRAMES, torch.Generator().manual_seed(0)))
    assert losses["text"] == 0
    with pytest.raises(ValueError, match="no text stream"):
        model.loss(AgentBatch.random(dataclasses.replace(model.config, text_vocab=4), 1, FRAMES))


def test_a_rollout_written_before_the_text_stream_still_loads_and_scores():
    old = rollout_from_bytes(OLD_ROLLOUT.read_bytes())
    assert old.text_tokens is None and old.text_log_probs is None
    torch.manual_seed(0)
    model = AgentModel(AgentConfig.named("debug")).eval()
    torch.testing.assert_close(model.log_probs(old).audio, old.audio_log_probs, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="no text tokens"):
        _debug().log_probs(old)


# --- on -------------------------------------------------------------------------------------------

def _outputs(model: AgentModel, batch: AgentBatch) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        out = model(batch)
    return out.text_logits, out.audio_logits


@pytest.mark.parametrize("i", [1, 3])
def test_the_text_of_frame_i_sees_what_its_first_audio_step_sees_and_frame_is_audio_reads_it(model, i):
    """Changing t_i leaves the text logits of frames <= i and audio step iR alone; steps iR + 1 on change."""
    batch = AgentBatch.random(model.config, 1, FRAMES, torch.Generator().manual_seed(2))
    text, audio = _outputs(model, batch)
    batch.agent_text = batch.agent_text.clone()
    batch.agent_text[0, i] = (batch.agent_text[0, i] + 1) % TEXT_VOCAB
    text2, audio2 = _outputs(model, batch)
    r = model.config.audio_frames_per_video_frame
    torch.testing.assert_close(text[:, : i + 1], text2[:, : i + 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(audio[:, : i * r + 1], audio2[:, : i * r + 1], atol=1e-6, rtol=0)
    assert not torch.allclose(audio[:, i * r + 1:], audio2[:, i * r + 1:])
    assert not torch.allclose(text[:, i + 1:], text2[:, i + 1:])
    # ... and the human's frame i reaches no text before frame i + 1.
    human = batch.human_audio.clone()
    human[..., i * r: (i + 1) * r] = (human[..., i * r: (i + 1) * r] + 1) % model.config.codebook_size
    text3, _ = _outputs(model, dataclasses.replace(batch, human_audio=human))
    torch.testing.assert_close(text2[:, : i + 1], text3[:, : i + 1], atol=1e-6, rtol=0)


def _stream(model: AgentModel, params: SamplingParams, frames: int = FRAMES, use_cache: bool = True):
    human, r = _human(model.config, frames), model.config.audio_frames_per_video_frame
    session = model.session(params, identity=1, use_cache=use_cache)
    outputs = [session.step(human_audio=None if i == 0 else human[:, (i - 1) * r: i * r]) for i in range(frames)]
    return outputs, session.rollout(), human


def test_streaming_matches_the_full_forward_with_the_text_stream(model):
    frames, rollout, human = _stream(model, SamplingParams(seed=3, audio_temperature=0.8, top_k=20))
    assert rollout.text_tokens.shape == (FRAMES,) and (rollout.text_tokens != PAD).any()
    out = model(rollout.to_batch())
    r = model.config.audio_frames_per_video_frame
    for frame in frames:
        i = frame.index
        assert frame.text_token == rollout.text_tokens[i]
        torch.testing.assert_close(frame.text_logits, out.text_logits[0, i], atol=1e-4, rtol=0)
        torch.testing.assert_close(frame.audio_logits, out.audio_logits[0, i * r: (i + 1) * r], atol=1e-4, rtol=0)
        torch.testing.assert_close(frame.visual_cond, out.visual_cond[0, i], atol=1e-4, rtol=0)
    _, uncached, _ = _stream(model, SamplingParams(seed=3, audio_temperature=0.8, top_k=20), use_cache=False)
    assert torch.equal(uncached.text_tokens, rollout.text_tokens)
    assert torch.equal(uncached.audio_tokens, rollout.audio_tokens)


def test_recorded_text_log_probs_are_what_the_full_forward_gives_also_after_a_continuation(model):
    params = SamplingParams(seed=4, audio_temperature=0.7, top_k=5, diffusion_steps=4)
    _, rollout, human = _stream(model, params)
    scored = model.log_probs(rollout)
    torch.testing.assert_close(scored.text, rollout.text_log_probs, atol=1e-4, rtol=0)
    torch.testing.assert_close(scored.text_sampling, rollout.text_sampling_log_probs, atol=1e-4, rtol=0)
    assert (rollout.text_sampling_log_probs >= rollout.text_log_probs - 1e-6).all()  # top-k renormalises upwards
    torch.testing.assert_close(scored.audio, rollout.audio_log_probs, atol=1e-4, rtol=0)
    r = model.config.audio_frames_per_video_frame
    session = StreamingSession.from_rollout(model, model.generate(3, params, human_audio=human, identity=1),
                                            SamplingParams(seed=5, audio_temperature=1.3, diffusion_steps=4))
    for i in range(3, FRAMES):
        session.step(human_audio=human[:, (i - 1) * r: i * r])
    continued = session.rollout()
    torch.testing.assert_close(model.log_probs(continued).text, continued.text_log_probs, atol=1e-4, rtol=0)
    torch.testing.assert_close(model.log_probs(continued).audio, continued.audio_log_probs, atol=1e-4, rtol=0)


def test_temperature_keeps_the_chance_of_saying_something_next():
    logits = torch.randn(3, TEXT_VOCAB, generator=torch.Generator().manual_seed(0))
    warm, cold = (text_log_distribution(logits, SamplingParams(audio_temperature=t)) for t in (1.0, 0.5))
    torch.testing.assert_close(warm[:, PAD], cold[:, PAD])
    torch.testing.assert_close(cold.logsumexp(-1), torch.zeros(3), atol=1e-5, rtol=0)
    assert not torch.allclose(warm[:, 1:], cold[:, 1:])


def test_a_rollout_with_text_round_trips_through_the_rollout_store(model):
    _, rollout, _ = _stream(model, SamplingParams(seed=6, top_k=5, diffusion_steps=4))
    stored = rollout_from_bytes(rollout_to_bytes(rollout))
    for name in ("text_tokens", "text_log_probs", "text_sampling_log_probs", "audio_tokens"):
        assert torch.equal(getattr(stored, name), getattr(rollout, name)), name
    torch.testing.assert_close(model.log_probs(stored).text, rollout.text_log_probs, atol=1e-4, rtol=0)


def test_the_loss_has_the_text_cross_entropy_and_a_few_steps_on_one_clip_lower_it():
    model = _debug().train()
    batch = AgentBatch.random(model.config, 1, 12, torch.Generator().manual_seed(3))
    losses = model.loss(batch)
    torch.testing.assert_close(losses["text"], torch.nn.functional.cross_entropy(
        model(batch).text_logits[0], batch.agent_text[0]))
    with pytest.raises(ValueError, match="carries no agent_text"):
        model.loss(dataclasses.replace(batch, agent_text=None))
    overfit(model, batch, 25)
    with torch.no_grad():
        after = model.loss(batch)["text"]
    assert after < 0.5 * losses["text"], (losses["text"], after)


def test_a_checkpoint_gains_the_text_stream_and_still_speaks_as_it_did(tmp_path, default_codec):
    start = initial_agent("tiny", 0, codec=default_codec).eval()
    start.save_pretrained(tmp_path / "plain")
    grown = initial_agent(str(tmp_path / "plain"), 0, codec=default_codec, monologue=True).eval()
    assert grown.config.text_vocab == TEXT_VOCAB
    kept = grown.state_dict()
    assert set(kept) - set(start.state_dict()) == {"embedder.text.weight", "text_head.weight", "text_head.bias"}
    batch = AgentBatch.random(start.config, 1, 4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = start(batch).audio_logits
        after = grown(dataclasses.replace(batch, agent_text=torch.randint(0, TEXT_VOCAB, (1, 4)))).audio_logits
    torch.testing.assert_close(after, before, atol=0, rtol=0)  # the text embedding starts at zero
    grown.save_pretrained(tmp_path / "grown")
    assert initial_agent(str(tmp_path / "grown"), 0, monologue=True).config.text_vocab == TEXT_VOCAB
