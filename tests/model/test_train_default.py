"""python -m model.train_default run tiny on 1 DeepSpeed rank: stage 1 then stage 2 from stage 1's
weights, one agent directory whose card names both stages, their losses and the command; a rerun
trains nothing; --card_only adds model.evaluate's table (as Markdown in README.md)."""

import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.agent import AgentModel
from model.evaluate import Evaluation, EvaluationConfig, write_report
from model.train_default import evaluation_markdown, main
from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--clips", "1", "--stage1_steps", "2", "--stage2_steps", "2", "--ranks", "1", "--logging_steps", "1"]


def _recipe(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "model.train_default", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    require_service("deepspeed", Path(sys.executable).with_name("deepspeed").exists(), "no deepspeed launcher")
    out = tmp_path_factory.mktemp("recipe") / "agent"
    run = _recipe("--out", str(out), *TINY, "--skip_eval")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out


@pytest.mark.slow
def test_the_recipe_trains_stage2_from_stage1_and_writes_one_agent_with_its_card(trained):
    card = json.loads((trained / "card.json").read_text())
    assert card["command"] == shlex.join(["python", "-m", "model.train_default", "--out", str(trained), *TINY,
                                          "--skip_eval"])
    one, two = card["stages"]["stage1"], card["stages"]["stage2"]
    assert one["command"] == ("python -m model.train --stage audio --out " + str(trained / "stage1") +
                              " --clips 1 --turn_buckets 40 --scene_objects 2 --turn_weight 4 --hazard_weight 20 --ranks 1"
                              " --max_steps 2 --save_steps 500 --resume True --logging_steps 1")
    assert (one["stage"], one["init"], two["stage"], two["init"]) == ("audio", "tiny", "audiovisual",
                                                                      str(trained / "stage1"))
    for stage in (one, two):
        assert stage["steps"] == 2 and stage["training"]["deepspeed"] == "zero2.json"
        first, last = stage["losses"]["first"], stage["losses"]["last"]
        assert (first["step"], last["step"]) == (1, 2) and first["loss"] > 0 and "loss/audio" in last
    assert card["steps"] == 4 and card["evaluation"] is None and "1 clips" in card["data"]
    readme = (trained / "README.md").read_text()
    assert card["command"] in readme and one["command"] in readme and two["command"] in readme

    assert (trained / "model.safetensors").read_bytes() == (trained / "stage2" / "model.safetensors").read_bytes()
    for name in ("loss_stage1.png", "loss_stage2.png"):
        assert (trained / name).read_bytes()[:4] == b"\x89PNG"
    # Stage 2 started from stage 1: the inputs only stage 1 asked for, every weight within one warm-up
    # step (lr 1e-4) of stage 1's, and the visual layers stage 1 froze now trained.
    first, final = AgentModel.from_pretrained(str(trained / "stage1")), AgentModel.from_pretrained(str(trained))
    assert final.config == first.config and (final.config.turn_buckets, final.config.scene_objects) == (40, 2)
    start = dict(first.named_parameters())
    for name, parameter in final.named_parameters():
        assert (parameter - start[name]).abs().max() < 1e-3, name
    assert any(not torch.equal(p, start[n]) for n, p in final.named_parameters() if n.startswith("diffusion."))


@pytest.mark.slow
def test_a_rerun_trains_nothing_and_other_flags_are_refused(trained):
    weights = {name: (trained / name / "model.safetensors").stat().st_mtime_ns for name in ("stage1", "stage2")}
    stages = json.loads((trained / "card.json").read_text())["stages"]
    again = _recipe("--out", str(trained), *TINY, "--skip_eval")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "stage1: finished earlier" in again.stdout and "stage2: finished earlier" in again.stdout
    assert weights == {name: (trained / name / "model.safetensors").stat().st_mtime_ns for name in weights}
    assert json.loads((trained / "card.json").read_text())["stages"] == stages
    other = _recipe("--out", str(trained), *TINY[:2], "--stage1_steps", "3", *TINY[4:], "--skip_eval")
    assert other.returncode == 2 and "--max_steps 2" in other.stderr and "not by this recipe's" in other.stderr
    assert weights == {name: (trained / name / "model.safetensors").stat().st_mtime_ns for name in weights}


def test_card_only_adds_the_evaluation_table_as_markdown(trained):
    """The table is written by model.evaluate's own writer; its numbers are made up here, since
    sampling even one turn per column costs minutes on 2 cores (tests/model/test_evaluate.py samples)."""
    columns = ["checkpoint@0.7", "checkpoint@1", "random@0.7", "random@1", "corpus", "corpus_codec"]
    metrics = ["turn/response_rate", "motion/frechet", "intelligibility/wer_domain"]  # not sorted
    table = {c: {m: 0.25 * i + j for j, m in enumerate(metrics)} for i, c in enumerate(columns)}
    table["corpus"]["motion/frechet"] = math.nan
    write_report(Evaluation(str(trained / "stage2"), EvaluationConfig(samples=1), table), trained / "evaluation")
    assert main(["--out", str(trained), *TINY, "--card_only"]) == 0
    card = json.loads((trained / "card.json").read_text())
    report = json.loads((trained / "evaluation" / "table.json").read_text())
    assert card["evaluation"]["table"] == report["table"] and card["evaluation"]["columns"] == columns
    assert card["evaluation"]["metrics"] == metrics and card["evaluation"]["config"]["samples"] == 1
    assert "--eval_samples 1" in card["command"] and "--skip_eval" not in card["command"]
    markdown = evaluation_markdown(card["evaluation"])
    assert markdown in (trained / "README.md").read_text()
    assert markdown.splitlines()[0] == "| metric | " + " | ".join(columns) + " |"
    assert markdown.splitlines()[3] == "| motion/frechet | 1.000 | 1.250 | 1.500 | 1.750 | n/a | 2.250 |"
    assert (trained / "evaluation.png").read_bytes()[:4] == b"\x89PNG"


def test_the_evaluation_table_renders_as_markdown():
    evaluation = {"columns": ["checkpoint@1", "corpus"],
                  "table": {"turn/response_rate": {"checkpoint@1": 0.5, "corpus": None}}}
    assert evaluation_markdown(evaluation) == ("| metric | checkpoint@1 | corpus |\n|---|---:|---:|\n"
                                               "| turn/response_rate | 0.500 | n/a |")


def test_bad_flags_and_unfinished_stages_are_refused(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "x"), "--ranks", "3"]) == 2
    assert "ranks must be 1 or 2" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "x"), "--card_only"]) == 2
    assert "is not finished" in capsys.readouterr().err and not (tmp_path / "x").exists()
