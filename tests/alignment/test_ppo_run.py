"""The PPO command line end to end: refusals before any rank starts, a real DeepSpeed run, kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from alignment.metrics_log import read_metrics
from alignment.ppo.ppo_config import PPOConfig
from alignment.ppo.run import RunRefused, preflight
from alignment.reward.model import RewardModel
from alignment.snapshot import write_snapshot
from model.agent import AgentModel
from model.agent.checkpoint import check_safetensors
from model.zoo import load_agent
from tests.conftest import REPO_ROOT, require_service

# The least a run can be: one 4-frame rollout per rank and step, 3 denoising steps (the noisiest one
# skipped, two trained): every phase, engine and checkpoint file still exists, at 2 ranks too.
TINY_RUN = ["--corpus_prompts", "1", "--episode_frames", "4", "--batch_size", "1", "--mini_batch_size", "1",
            "--diffusion_steps", "3", "--progress", "false"]


@pytest.fixture(scope="module")
def reward_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reward_models")
    RewardModel.from_agent(load_agent("default")).save_pretrained(root / "default")
    torch.manual_seed(0)
    RewardModel.from_agent(AgentModel.from_pretrained("debug")).save_pretrained(root / "debug")
    return {"default": root / "default", "debug": root / "debug"}


def ppo(*args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "alignment.ppo", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def test_a_reward_model_on_another_backbone_is_refused_before_any_rank_starts(reward_models, tmp_path):
    process = ppo("--output_dir", str(tmp_path / "run"), "--reward_model", str(reward_models["debug"]),
                  "--ranks", "2", *TINY_RUN)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 2, output
    assert "refused" in output and "backbone" in output and "num_codebooks" in output
    assert "deepspeed" not in output.lower()  # the launcher never ran
    assert not (tmp_path / "run").exists()


def test_a_snapshot_without_human_turns_is_refused_before_any_rank_starts(reward_models, tmp_path):
    empty = write_snapshot(tmp_path / "snapshots", [], {}, ("listening",))
    process = ppo("--output_dir", str(tmp_path / "run"), "--reward_model", str(reward_models["default"]),
                  "--snapshot", str(empty.path), "--ranks", "2", *TINY_RUN)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 2, output
    assert "refused" in output and "no human turns" in output, output
    assert "deepspeed" not in output.lower()
    assert not (tmp_path / "run").exists()


def test_a_directory_that_is_no_snapshot_is_refused(reward_models, tmp_path):
    config = PPOConfig(output_dir=str(tmp_path / "run"), reward_model=str(reward_models["default"]),
                       snapshot=str(tmp_path))
    with pytest.raises(RunRefused, match="is not a snapshot"):
        preflight(config)


def test_a_missing_reward_model_is_refused(tmp_path):
    process = ppo("--output_dir", str(tmp_path / "run"), "--reward_model", str(tmp_path / "nothing"), *TINY_RUN)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 2 and "refused" in output and "reward model" in output, output


@pytest.mark.slow
def test_a_run_killed_mid_way_resumes_from_its_last_checkpoint_and_saves_a_g_checkpoint(reward_models, tmp_path):
    out = tmp_path / "run"
    args = ["--output_dir", str(out), "--reward_model", str(reward_models["default"]), "--total_steps", "3",
            "--save_steps", "1", *TINY_RUN]
    first = ppo(*args, start_new_session=True)
    state = out / "checkpoints" / "step-000001" / "trainer_state.json"
    deadline = time.monotonic() + 300
    while not state.is_file():
        assert first.poll() is None, first.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    assert not (out / "policy").exists()

    second = ppo(*args)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    assert "resumed from step" in output
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [line["step"] for line in lines if "metrics" in line]
    assert steps[-1] == 3 and steps.count(3) == 1  # every step after the checkpoint ran once after the resume
    assert lines[-1]["event"] == "done"
    first_step = next(line["metrics"] for line in lines if line.get("step") == 1 and "metrics" in line)
    for name in ("ppo/reward", "ppo/kl", "ppo/entropy", "ppo/clipfrac_tokens", "ppo/clipfrac_diffusion",
                 "ppo/approx_kl", "ppo/value_loss", "ppo/ratio_mean", "ppo/explained_variance"):
        assert name in first_step
    # actor == reference at step 1: the first minibatch's ratios are exactly 1 and the KL is 0.
    assert first_step["ppo/first_minibatch/token_ratio_max_deviation"] == 0
    assert first_step["ppo/first_minibatch/step_ratio_max_deviation"] == 0
    # Exactly 0 module to module (test_ppo_scoring); through the DeepSpeed engines ~1e-6 (see the trainer).
    assert abs(first_step["ppo/kl"]) < 1e-4

    policy = AgentModel.from_pretrained(str(out / "policy"))
    card = json.loads((out / "policy" / "card.json").read_text())
    assert card["kind"] == "ppo-policy" and card["reward_model"]["path"] == str(reward_models["default"])
    assert card["parent"] == "default" and card["steps"] == 3
    initial = load_agent("default")
    assert any(not torch.equal(a, b) for a, b in zip(policy.state_dict().values(), initial.state_dict().values()))
    for file in (out / "checkpoints").rglob("*"):
        if file.is_file():
            assert file.suffix in (".safetensors", ".json", ".md"), file
            if file.suffix == ".safetensors":
                check_safetensors(file)
    assert (out / "curves.png").stat().st_size > 0


def wait_for_checkpoint_then_kill(process: subprocess.Popen, state: Path, timeout: float) -> None:
    """SIGKILL the run's whole process group (launcher and ranks) once `state` exists."""
    deadline = time.monotonic() + timeout
    while not state.is_file():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"no checkpoint within {timeout} s"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)


@pytest.mark.slow
def test_a_two_rank_deepspeed_run_killed_mid_way_resumes_on_both_ranks(reward_models, tmp_path):
    require_service("deepspeed", Path(sys.executable).with_name("deepspeed").exists(), "no deepspeed launcher")
    out = tmp_path / "run"
    args = ["--output_dir", str(out), "--reward_model", str(reward_models["default"]), "--ranks", "2",
            "--total_steps", "2", "--save_steps", "1", *TINY_RUN]
    first = ppo(*args, start_new_session=True)
    wait_for_checkpoint_then_kill(first, out / "checkpoints" / "step-000001" / "trainer_state.json", timeout=600)
    checkpoint = out / "checkpoints" / "step-000001"
    for rank in (0, 1):  # ZeRO-2 partitions the moments: each rank wrote its own
        for engine in ("actor", "critic"):
            check_safetensors(checkpoint / f"optimizer-{engine}-rank{rank}.safetensors")
    assert json.loads((checkpoint / "trainer_state.json").read_text())["world_size"] == 2
    assert not (out / "policy").exists()

    second = ppo(*args)
    output, _ = second.communicate(timeout=900)
    assert second.returncode == 0, output
    assert "resumed from step 1" in output and "AdamW moments restart" not in output
    steps = [line["step"] for line in read_metrics(out) if "metrics" in line]
    assert steps[-1] == 2 and steps.count(2) == 1
    card = json.loads((out / "policy" / "card.json").read_text())
    assert card["ranks"] == 2 and card["steps"] == 2
    AgentModel.from_pretrained(str(out / "policy"))
