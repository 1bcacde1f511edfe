"""model.train: stage 1 (audio) on 2 DeepSpeed ZeRO-2 CPU ranks lowers the loss and leaves the visual
layers alone; stage 2 (audio-visual) starts from stage 1's weights. Losses are measured here on the
training clips, not read from the run's logs."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.agent import AgentModel
from model.text import load_text_encoder
from model.train.corpus import ClipCollator, build_corpus, turn_weights, window_batch
from model.train.sft import VISUAL_PARAMETERS, initial_agent
from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--clips", "2", "--window_frames", "24", "--per_device_train_batch_size", "1", "--logging_steps", "2",
        "--warmup_steps", "2", "--save_steps", "4"]


def _train(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "model.train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _losses(agent: AgentModel, batch) -> dict[str, float]:
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        return {k: v.item() for k, v in agent.eval().loss(batch).items()}


@pytest.fixture(scope="module")
def stage1(tmp_path_factory) -> Path:
    require_service("deepspeed", Path(sys.executable).with_name("deepspeed").exists(), "no deepspeed launcher")
    out = tmp_path_factory.mktemp("sft") / "stage1"
    run = _train("--stage", "audio", "--out", str(out), "--ranks", "2", "--zero_stage", "2", "--max_steps", "8", *TINY)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def clips(default_codec):
    return build_corpus(range(2), default_codec, load_text_encoder("default"), initial_agent("tiny", 0).config,
                        progress=False)


@pytest.mark.slow
def test_a_two_rank_zero2_stage1_lowers_the_audio_loss_and_keeps_the_visual_layers(stage1, clips):
    card = json.loads((stage1 / "card.json").read_text())
    assert card["training"]["ranks"] == 2 and card["training"]["deepspeed"] == "zero2.json"
    assert card["steps"] == 8 and (stage1 / "loss.png").read_bytes()[:4] == b"\x89PNG"
    start, trained = initial_agent("tiny", 0), AgentModel.from_pretrained(str(stage1))
    batch = window_batch(clips, 24, start.config, visual=False)
    before, after = _losses(start, batch), _losses(trained, batch)
    assert after["audio"] < before["audio"] - 0.3, (before, after)
    fresh = dict(start.named_parameters())
    for name, parameter in trained.named_parameters():
        if name.startswith(VISUAL_PARAMETERS):
            assert torch.equal(parameter, fresh[name]), f"stage 1 changed the visual layer {name}"


@pytest.mark.slow
def test_stage2_starts_from_the_stage1_weights(stage1, tmp_path):
    out = tmp_path / "stage2"
    run = _train("--stage", "audiovisual", "--init", str(stage1), "--out", str(out), "--zero_stage", "0",
                 "--max_steps", "2", "--learning_rate", "1e-4", *TINY)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert json.loads((out / "card.json").read_text())["init"] == str(stage1)
    one, two = dict(AgentModel.from_pretrained(str(stage1)).named_parameters()), AgentModel.from_pretrained(str(out))
    fresh = dict(initial_agent("tiny", 1).named_parameters())
    moved = False
    for name, parameter in two.named_parameters():
        # Two AdamW steps at lr 1e-4 move a weight by at most ~2e-4: far closer to stage 1 than a fresh init is.
        assert (parameter - one[name]).abs().max() < 1e-3, name
        moved |= not torch.equal(parameter, one[name])
        if fresh[name].numel() > 1 and not torch.equal(fresh[name], one[name]):
            assert (parameter - one[name]).norm() < 0.1 * (fresh[name] - one[name]).norm(), name
    assert moved, "stage 2 trained nothing"
    assert any(not torch.equal(p, one[n]) for n, p in two.named_parameters() if n.startswith("diffusion."))


def test_bad_stages_are_refused_before_anything_starts(tmp_path):
    bad = _train("--stage", "video", "--out", str(tmp_path / "x"), timeout=300)
    assert bad.returncode == 2 and "stage must be one of" in bad.stderr
    orphan = _train("--stage", "audiovisual", "--out", str(tmp_path / "x"), timeout=300)
    assert orphan.returncode == 2 and "stage-1 checkpoint" in orphan.stderr
    assert not (tmp_path / "x").exists()


def test_turn_weights_stress_the_human_turn_the_gap_and_the_onset_and_reweigh_only_there(clips):
    """Exact weights on the corpus's own spans; uniform weights leave the audio loss as it was, and a
    weight on the turn steps pulls the training loss towards those steps' own mean."""
    torch.manual_seed(0)
    agent = initial_agent("tiny", 0).eval()
    config, r = agent.config, agent.config.audio_frames_per_video_frame
    frames = max(c.num_frames for c in clips)
    weights = turn_weights(clips, frames, config, weight=5.0)
    for row, clip in zip(weights, clips):
        onset = clip.agent_span[0] + 6  # 0.25 s at 24 fps
        assert (row[clip.human_span[0] * r: onset * r] == 5).all()
        assert (row[: clip.human_span[0] * r] == 1).all() and (row[onset * r:] == 1).all()
    batch = window_batch(clips, frames, config, visual=False)
    with torch.no_grad():
        plain, uniform = agent.loss(batch), agent.loss(batch, torch.ones_like(weights))
        only_turn = agent.loss(batch, (weights > 1).float() + 1e-9)
        stressed = agent.loss(batch, weights)
    assert torch.allclose(plain["audio"], uniform["audio"]) and torch.allclose(plain["audio"], plain["audio_mean"])
    assert torch.allclose(stressed["audio_mean"], plain["audio"])
    low, high = sorted([plain["audio"].item(), only_turn["audio"].item()])
    assert low < stressed["audio"].item() < high
    assert abs(stressed["audio"] - only_turn["audio"]) < abs(plain["audio"] - only_turn["audio"])


def test_a_batch_of_clips_of_different_lengths_keeps_every_answer(clips):
    """Shorter clips are extended by their own silent last frame, so the longest clip's answer is whole."""
    config = initial_agent("tiny", 0).config
    collated = ClipCollator(config, window_frames=10_000, prompt_dropout=0.0, visual=True)(clips)
    batch, r = collated["batch"], config.audio_frames_per_video_frame
    assert batch.num_frames == max(c.num_frames for c in clips)
    short = min(range(len(clips)), key=lambda i: clips[i].num_frames)
    n = clips[short].num_frames
    assert torch.equal(batch.agent_visual[short, n:], clips[short].visual[-1:].expand(batch.num_frames - n, -1, -1))
    assert (batch.human_audio[short, :, n * r:] == clips[short].human_codes[:, -1:]).all()
    assert collated["audio_weights"].shape == (len(clips), batch.num_frames * r)


def test_a_checkpoint_gains_the_turn_feature_and_the_scene_input_keeping_every_weight(tmp_path, default_codec):
    start = initial_agent("tiny", 0)
    start.save_pretrained(tmp_path / "plain")
    grown = initial_agent(str(tmp_path / "plain"), 0, turn_buckets=8, codec=default_codec, scene_objects=2)
    assert (grown.config.turn_buckets, grown.config.scene_objects) == (8, 2) and grown.config.quiet_codes
    kept = grown.state_dict()
    for name, value in start.state_dict().items():
        assert torch.equal(kept[name], value), name
    assert set(kept) - set(start.state_dict()) == {"embedder.turn.weight", "embedder.scene.weight", "embedder.empty.scene"}
    grown.save_pretrained(tmp_path / "grown")
    with pytest.raises(ValueError, match="already reads 2 scene objects"):
        initial_agent(str(tmp_path / "grown"), 0, scene_objects=3)


def test_the_onset_hazard_loss_is_the_survival_likelihood_of_the_agents_onsets_at_its_at_risk_steps():
    """A hand-made codebook-0 stream: silent, silent, onset, voiced, silent. At-risk steps are those
    after a silent one (1, 2 and, after the voiced step, none; step 4 follows a voiced step)."""
    agent = initial_agent("tiny", 0)
    quiet = agent.config.quiet_codes
    voiced = next(code for code in range(agent.config.codebook_size) if code not in quiet)
    codes = torch.tensor([[quiet[0], quiet[0], voiced, voiced, quiet[0]]])
    logits = torch.randn(1, 5, agent.config.codebook_size + 1, generator=torch.Generator().manual_seed(0))
    p = torch.softmax(logits, -1)[0]
    p_quiet = p[:, quiet].sum(-1)
    expected = -(torch.log(p_quiet[1]) + torch.log(1 - p_quiet[2] - p[2, -1])) / 2
    torch.testing.assert_close(agent.onset_hazard_loss(logits, codes), expected)


def test_the_hazard_weight_adds_the_onset_term_to_the_training_loss(clips):
    agent = initial_agent("tiny", 0).eval()
    batch = window_batch(clips, max(c.num_frames for c in clips), agent.config, visual=False)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):  # the same diffusion noise for both
        torch.manual_seed(0)
        plain = agent.loss(batch)
        torch.manual_seed(0)
        weighted = agent.loss(batch, hazard_weight=10.0)
    assert plain["hazard"] > 0 and torch.allclose(plain["hazard"], weighted["hazard"])
    torch.testing.assert_close(weighted["loss"], plain["loss"] + 10.0 * plain["hazard"])
    without_quiet = AgentModel(dataclasses.replace(agent.config, quiet_codes=[], turn_buckets=0))
    with pytest.raises(ValueError, match="quiet codes"):
        without_quiet.loss(batch, hazard_weight=1.0)
