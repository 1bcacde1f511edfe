"""python -m alignment.loop at its smallest, through real processes, killed once and continued.

One run is shared by the tests below (module fixture): ``manage.py serve`` on the embedded
defaults (SQLite, the filesystem broker, a real Celery worker), simulated annotators over HTTP,
a reward-model and a PPO job on the jobs queue. The loop process is SIGKILLed in stage
2-annotate once its first vote has been saved, then started again with the same flags. The
tests read the loop's database through the Django ORM (``manage.py shell`` on the run's var
dir) and check the report against it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, embedded_env

pytestmark = [pytest.mark.slow, pytest.mark.worker]

ROUNDS = 3
TINY = ["--rounds", str(ROUNDS), "--child_rounds", str(ROUNDS), "--ranks", "1", "--annotators", "2", "--parallel", "2", "--noisy_share", "0.5",
        "--biased_share", "0.5", "--reward_epochs", "1", "--reward_batch_size", "2", "--reward_validation_fraction", "0.5", "--ppo_steps", "1",
        "--ppo_batch_size", "2", "--ppo_mini_batch_size", "1", "--ppo_episode_frames", "16",
        "--stage_timeout", "900"]

# What the test reads from the loop's database, by the ORM.
QUERY = """
import json
from labeling_app.models import AgentVariant, Campaign, Comparison, TrainingJob, TrainingMetric
out = {"campaigns": {}, "variants": {v.name: {"id": v.pk, "parent": v.parent.name if v.parent else None,
        "produced_by": v.produced_by_id} for v in AgentVariant.objects.select_related("parent")}}
for c in Campaign.objects.filter(slug__in=["loop-1", "loop-2"]):
    rows = Comparison.objects.filter(scenario__campaign=c).select_related("candidate_a", "candidate_b")
    out["campaigns"][c.slug] = {"id": c.pk, "status": c.status, "a": c.variant_a.name, "b": c.variant_b.name,
        "questions": sorted(c.scenarios.values_list("title", flat=True)),
        "comparisons": [{"id": str(r.public_id), "left": r.candidate_a.variant.name, "right": r.candidate_b.variant.name,
                         "left_candidate": str(r.candidate_a.public_id), "right_candidate": str(r.candidate_b.public_id),
                         "overall": r.overall, "listening": r.listening, "speaking": r.speaking,
                         "identity": r.identity} for r in rows]}
ppo = TrainingJob.objects.get(kind="ppo")
kl = TrainingMetric.objects.filter(job=ppo, name="ppo/kl").order_by("-step").first()
out["ppo"] = {"id": ppo.pk, "status": ppo.status, "kl": kl.value if kl else None}
out["reward_status"] = TrainingJob.objects.get(kind="reward").status
print(json.dumps(out))
"""


def loop_env(out: Path) -> dict[str, str]:
    return embedded_env(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
                        HER_VAR_DIR=str(out / "var"), HER_DEMO_USERS="0")


def state_of(out: Path) -> dict:
    try:
        return json.loads((out / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("loop") / "run"
    command = [sys.executable, "-m", "alignment.loop", "--out", str(out), *TINY]
    log = open(out.parent / "loop.log", "ab")
    first = subprocess.Popen(command, cwd=REPO_ROOT, env=loop_env(out), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900
    saved = {}
    while not saved:
        votes = state_of(out).get("stages", {}).get("2-annotate", {}).get("votes", {})
        saved = {r: v for r, v in votes.items() if v.get("comparison")}
        assert first.poll() is None, (out.parent / "loop.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no vote was saved in time"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = subprocess.run(command, cwd=REPO_ROOT, env=loop_env(out), stdout=log, stderr=subprocess.STDOUT,
                            timeout=1800)
    log.close()
    assert second.returncode == 0, (out.parent / "loop.log").read_text()[-5000:]
    shell = subprocess.run([sys.executable, "manage.py", "shell", "-c", QUERY], cwd=REPO_ROOT, env=loop_env(out),
                           capture_output=True, text=True, timeout=300, check=True)
    return {"out": out, "saved_before_kill": saved, "db": json.loads(shell.stdout.strip().splitlines()[-1]),
            "state": state_of(out), "report": json.loads((out / "report.json").read_text())}


def test_every_stage_ran_once_except_the_killed_one(run):
    stages = run["state"]["stages"]
    assert run["state"]["restarts"] == 1
    assert {name: stages[name]["runs"] for name in stages if "runs" in stages[name]} == {
        "1-campaign": 1, "2-annotate": 2, "3-train": 1, "4-child-campaign": 1, "5-judge-child": 1}
    assert (run["out"] / "report.md").is_file() and (run["out"] / "win_rates.png").is_file()
    db = run["db"]
    assert db["reward_status"] == "succeeded" and db["ppo"]["status"] == "succeeded"
    child = run["report"]["child"]
    assert db["variants"][child] == {"id": db["variants"][child]["id"], "parent": "loop-default-t1",
                                     "produced_by": db["ppo"]["id"]}
    assert (db["campaigns"]["loop-2"]["a"], db["campaigns"]["loop-2"]["b"]) == (child, "loop-default-t1")
    assert db["campaigns"]["loop-1"]["status"] == "closed"
    # the child is judged on held-out questions neither the reward model nor PPO saw
    assert not set(db["campaigns"]["loop-1"]["questions"]) & set(db["campaigns"]["loop-2"]["questions"])


def test_no_vote_lost_and_every_vote_is_the_judgement_the_simulator_made(run):
    db = run["db"]["campaigns"]
    for stage, slug in (("2-annotate", "loop-1"), ("5-judge-child", "loop-2")):
        rows = {r["id"]: r for r in db[slug]["comparisons"]}
        votes = run["state"]["stages"][stage]["votes"]
        assert len(rows) == ROUNDS  # every scenario judged once (overlap 1)
        assert sorted(v["comparison"] for v in votes.values()) == sorted(rows)
        for vote in votes.values():
            row = rows[vote["comparison"]]
            assert {k: row[k] for k in ("overall", "listening", "speaking", "identity")} == {
                k: vote["fields"][k] for k in ("overall", "listening", "speaking", "identity")}
            assert (row["left_candidate"], row["right_candidate"]) == (vote["candidates"]["left"],
                                                                       vote["candidates"]["right"])
    first = {r["id"] for r in db["loop-1"]["comparisons"]}
    assert {v["comparison"] for v in run["saved_before_kill"].values()} <= first


def test_report_win_rates_and_metrics_match_the_database(run):
    db, report = run["db"]["campaigns"], run["report"]
    for number, slug in (("1", "loop-1"), ("2", "loop-2")):
        first_variant = db[slug]["a"]
        for field, rate in report["win_rates"][number].items():
            wins = losses = ties = 0
            for row in db[slug]["comparisons"]:
                verdict = row[field]
                if verdict in ("tie", "both_bad"):
                    ties += 1
                elif verdict in ("a", "b"):
                    winner = row["left"] if verdict == "a" else row["right"]
                    wins, losses = (wins + 1, losses) if winner == first_variant else (wins, losses + 1)
            assert (rate["first"], rate["second"], rate["ties"]) == (wins, losses, ties), (slug, field)
            if rate["n"]:
                assert rate["rate"] == pytest.approx((wins + ties / 2) / rate["n"])
                assert rate["low"] <= rate["rate"] <= rate["high"]
    rows = {r["id"]: r for r in db["loop-2"]["comparisons"]}
    child = report["child"]
    for name, metric in report["metrics"].items():
        pairs = []
        for vote in run["state"]["stages"]["5-judge-child"]["votes"].values():
            row = rows[vote["comparison"]]
            side = "left" if row["left"] == child else "right"
            other = "right" if side == "left" else "left"
            pair = (vote["metrics"][other][name], vote["metrics"][side][name])
            if all(v == v for v in pair):  # NaN: not applicable
                pairs.append(pair)
        assert metric["n"] == len(pairs)
        assert metric["child"] == pytest.approx(sum(c for _, c in pairs) / len(pairs))
        assert metric["parent"] == pytest.approx(sum(p for p, _ in pairs) / len(pairs))
    assert report["kl_to_parent"] == pytest.approx(run["db"]["ppo"]["kl"])
    focus = report["win_rates"]["2"][report["most_important"]]
    assert report["claim"]["beats_parent"] == (focus["low"] is not None and focus["low"] > 0.5)
    assert report["claim"]["holds"] == (report["claim"]["beats_parent"] and not report["claim"]["worse"])
    assert os.path.getsize(run["out"] / "report.md") > 0
