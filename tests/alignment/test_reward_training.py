"""Reward training end to end: the CLI in one process, the refusals, and a 2-rank DeepSpeed ZeRO-2 run."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

from alignment.reward import RewardModel
from alignment.reward.__main__ import main
from alignment.reward.data import PairDataset, PreferenceCollator
from alignment.snapshot import Snapshot
from model.agent import AgentConfig
from tests.conftest import REPO_ROOT, require_service


def test_cli_trains_saves_a_card_with_the_snapshot_hash_and_normalises(small_snapshot, debug_agent_dir, tmp_path):
    out = tmp_path / "rm"
    rc = main(["--snapshot", str(small_snapshot.path), "--base", str(debug_agent_dir), "--out", str(out),
               "--zero_stage", "0", "--num_train_epochs", "1", "--per_device_train_batch_size", "4"])
    assert rc == 0
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["snapshot_sha256"] == small_snapshot.sha256
    assert "eval/reward/accuracy" in card["metrics"] and "eval/reward/accuracy/speaking" in card["metrics"]
    assert (out / "curves.png").stat().st_size > 1000
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["event"] == "done" and any("train/loss" in line.get("metrics", {}) for line in lines)
    model = RewardModel.from_pretrained(out, agent=debug_agent_dir)
    assert model.head_names == ("overall", "speaking", "listening")
    # The reference (variant 1, sampled from the base checkpoint) scores mean 0 on every head.
    reference = [p.chosen if p.chosen_checkpoint == str(debug_agent_dir) else p.rejected for p in small_snapshot.pairs()]
    scores = []
    with torch.no_grad():
        for path in reference:
            from alignment.reward.data import load_exchange
            scores.append(model(load_exchange(path)))
    torch.testing.assert_close(torch.cat(scores).mean(0), torch.zeros(3), atol=1e-4, rtol=0)


def test_collator_pads_pairs_chosen_first(small_snapshot):
    dataset = PairDataset(small_snapshot.pairs()[:3], ("overall", "speaking", "listening"))
    batch = PreferenceCollator(special_token=AgentConfig.named("debug").special_token)([dataset[i] for i in range(3)])
    assert batch["clips"].batch_size == 6 and batch["targets"].shape == (3, 3)
    assert torch.equal(batch["lengths"][:3], batch["lengths"][3:])  # both sides of a pair answer one turn


def test_refusals_before_any_rank_starts(small_snapshot, debug_agent_dir, tmp_path, capsys):
    other = AgentConfig.named("debug")
    other.backbone = {**other.backbone, "num_hidden_layers": 1}
    RewardModel(other, ()).save_pretrained(tmp_path / "mismatched")
    args = ["--snapshot", str(small_snapshot.path), "--base", str(debug_agent_dir), "--out", str(tmp_path / "o"),
            "--ranks", "2"]
    assert main(args + ["--init_reward", str(tmp_path / "mismatched")]) == 2
    assert "num_hidden_layers" in capsys.readouterr().err
    assert main(args[:3] + [str(tmp_path / "nowhere")] + args[4:]) == 2
    assert "base checkpoint" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(small_snapshot.path, broken)
    (broken / "manifest.jsonl").chmod(0o644)
    with open(broken / "manifest.jsonl", "a") as f:
        f.write("\n")
    assert main(["--snapshot", str(broken)] + args[2:]) == 2
    assert "modified" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_two_rank_deepspeed_zero2_run(small_snapshot, debug_agent_dir, tmp_path):
    require_service("deepspeed", shutil.which("deepspeed") is not None or (REPO_ROOT / ".venv/bin/deepspeed").exists()
                    or __import__("pathlib").Path(sys.executable).with_name("deepspeed").exists(), "no launcher")
    out = tmp_path / "rm"
    result = subprocess.run(
        [sys.executable, "-m", "alignment.reward", "--snapshot", str(small_snapshot.path), "--base",
         str(debug_agent_dir), "--out", str(out), "--ranks", "2", "--zero_stage", "2", "--num_train_epochs", "1",
         "--per_device_train_batch_size", "2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    card = json.loads((out / "card.json").read_text())
    assert card["ranks"] == 2 and card["deepspeed"] == "zero2.json"
    train_pairs = card["data"]["train_pairs"]
    # Two ranks share the data: each step takes 2 pairs per rank, so an epoch is ceil(n / 4) steps.
    assert card["steps"] == -(-train_pairs // 4)
    RewardModel.from_pretrained(out, agent=debug_agent_dir)
    assert Snapshot.load(small_snapshot.path).sha256 == card["data"]["snapshot_sha256"]
