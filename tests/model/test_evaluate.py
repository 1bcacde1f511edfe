"""python -m model.evaluate on a tiny agent built here: its table is what the metrics say of the
rollouts it wrote, it has the random and corpus columns, it is reproducible, and a bad checkpoint
is refused with a readable message before anything is sampled."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from model.agent import AgentModel
from model.evaluate import (
    EvaluationConfig,
    heldout_turn,
    load_kit,
    main,
    sample_and_score,
    score_rollout,
)
from model.metrics import MotionStatistics, frechet_distance, requested_object, word_error_rate
from model.rollout_store import rollout_from_bytes

CONFIG = EvaluationConfig(samples=1, manipulation_samples=1, temperatures=(1.0,), response_seconds=0.25,
                          motion_reference_clips=1)
COLUMNS = ["checkpoint@1", "random@1", "corpus", "corpus_codec"]


@pytest.fixture(scope="module")
def checkpoint(micro_checkpoint):
    return micro_checkpoint


@pytest.fixture(scope="module")
def evaluated(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    main([str(checkpoint), "--samples", "1", "--manipulation-samples", "1", "--temperatures", "1.0", "--response-seconds", "0.25",
          "--motion-reference-clips", "1", "--out", str(out)])
    return out, json.loads((out / "table.json").read_text())


@pytest.mark.slow
def test_the_table_is_what_the_metrics_say_of_the_written_rollouts(evaluated):
    out, report = evaluated
    assert report["columns"] == COLUMNS
    assert (out / "table.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table, kit = report["table"], load_kit(CONFIG.motion_reference_clips)
    # Turn 0, then the first held-out turn after it that asks for an object in the scene.
    turns = sorted({s["turn"] for s in report["samples"]})
    assert len(turns) == 2 and turns[0] == 0
    heldout = {j: heldout_turn(j, kit.codec) for j in range(turns[1] + 1)}
    assert [j for j, t in heldout.items() if requested_object(t.prompt, t.objects) is not None][-1:] == [turns[1]]
    assert all(requested_object(heldout[j].prompt, heldout[j].objects) is None for j in range(1, turns[1]))
    tokens = {}
    for column in ("checkpoint@1", "random@1"):
        rows = {s["turn"]: s for s in report["samples"] if s["column"] == column}
        scored = []
        for j in turns:
            rollout = rollout_from_bytes((out / rows[j]["rollout"]).read_bytes())
            assert rollout.params.seed == j and rollout.params.audio_temperature == 1.0
            scored.append(score_rollout(rollout, heldout[j], kit, fps=24))
            tokens.setdefault(column, rollout.audio_tokens)
        metrics = [score.metrics for _, score in scored]
        assert not math.isnan(metrics[1]["manipulation/grasp_success"])  # the turn that asks is scored on it
        expected = {name: np.nanmean([m[name] for m in metrics]) if any(not math.isnan(m[name]) for m in metrics)
                    else math.nan for name in metrics[0]
                    if not name.startswith(("intelligibility/", "motion/")) and name != "turn/latency_s"}
        latencies = [m["turn/latency_s"] for m in metrics if not math.isnan(m["turn/latency_s"])]
        expected["turn/latency_median_s"] = float(np.median(latencies)) if latencies else math.nan
        for kind in ("domain", "general"):
            heard = [score.transcripts[kind] for _, score in scored]
            expected[f"intelligibility/wer_{kind}"] = word_error_rate([heldout[j].answer for j in turns], heard)
            expected[f"intelligibility/heard_{kind}"] = float(np.mean([bool(h) for h in heard]))
        expected["motion/frechet"] = frechet_distance(
            MotionStatistics.of([exchange.poses for exchange, _ in scored], 24), kit.motion_reference)
        for name, value in expected.items():
            shown = table[name][column]
            assert (shown is None) if math.isnan(value) else shown == pytest.approx(value, rel=1e-6), (column, name)
        assert table["motion/diversity"][column] is not None  # two samples: one pair
    assert not torch.equal(tokens["checkpoint@1"], tokens["random@1"])
    # The ceilings: the corpus's own clips answer, in time, without talking over the question.
    for column in ("corpus", "corpus_codec"):
        assert table["turn/response_rate"][column] == 1.0 and table["turn/talked_over"][column] == 0.0
        assert table["manipulation/grasp_success"][column] == 1.0
        assert table["intelligibility/wer_domain"][column] < 1.0


@pytest.mark.slow
def test_sample_and_score_is_the_evaluation_loop_and_is_deterministic(checkpoint, evaluated):
    out, report = evaluated
    agent, kit = AgentModel.from_pretrained(str(checkpoint)), load_kit(CONFIG.motion_reference_clips)
    turn = heldout_turn(0, kit.codec)
    (row,) = [s for s in report["samples"] if s["column"] == "checkpoint@1" and s["turn"] == 0]
    written = rollout_from_bytes((out / row["rollout"]).read_bytes())
    from model.respond import ResponseConfig

    response = ResponseConfig(response_seconds=0.25, width=64, height=64)
    first = sample_and_score(agent, turn, 1.0, 0, kit, response=response)  # a fresh agent, another run: same sample
    assert torch.equal(first.rollout.audio_tokens, written.audio_tokens)
    assert torch.equal(first.rollout.visual_tokens, written.visual_tokens)
    assert {k: None if math.isnan(v) else pytest.approx(v) for k, v in first.metrics.items()} == row["metrics"]
    assert first.response.duration_seconds == pytest.approx(first.exchange.num_frames / 24)
    other = sample_and_score(agent, turn, 1.0, 1, kit, response=response)
    assert not torch.equal(first.rollout.audio_tokens, other.rollout.audio_tokens)


def test_a_missing_or_foreign_checkpoint_is_refused_before_sampling(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert "no agent checkpoint at" in capsys.readouterr().err
    foreign = AgentModel.from_pretrained("debug").save_pretrained(tmp_path / "debug")  # 3 codebooks of 32
    with pytest.raises(SystemExit):
        main([str(foreign), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "cannot use the agent checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_settings_are_usage_errors(tmp_path, capsys):
    for flags, message in ((["--samples", "0"], "samples must be >= 1"),
                           (["--temperatures", "0"], "temperatures must be"),
                           (["--diffusion-steps", "1"], "diffusion_steps")):
        with pytest.raises(SystemExit):
            main(["default", *flags, "--out", str(tmp_path)])
        assert message in capsys.readouterr().err
