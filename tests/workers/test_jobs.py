"""Training jobs through a real worker process and Redis: a reward run to the end, a cancel that
leaves no rank alive (by pid), a worker killed mid-run, and the refusals of the job action."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from labeling_app.actions import Refused
from labeling_app.actions.jobs import ConfigError, RewardJobConfig, cancel_job, create_job, parse_config
from labeling_app.actions.snapshots import create_snapshot
from labeling_app.models import AgentVariant, Comparison, TrainingJob, TrainingMetric
from model.agent import AgentConfig, AgentModel
from tests.labeling_app.conftest import make_user
from tests.labeling_app.test_jobs_snapshots import campaign_with_votes
from tests.workers.conftest import REDIS_URL, pool_children, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def job_setup(tmp_path, settings, redis_worker_env):
    """A debug agent under the allowed checkpoint roots, a voted campaign sampled from it, and its
    snapshot; the test process sends to the same Redis the worker reads."""
    settings.CELERY_BROKER_URL = REDIS_URL
    roots = tmp_path / "var" / "checkpoints"
    settings.HER_CHECKPOINT_ROOTS = [roots]
    torch.manual_seed(0)
    agent_dir = roots / "debug"
    AgentModel(AgentConfig.named("debug")).save_pretrained(agent_dir, card={"data": "random init, tests"})
    campaign = campaign_with_votes(8, agent=AgentModel.from_pretrained(str(agent_dir)), checkpoint=str(agent_dir))
    snapshot, _ = create_snapshot([campaign])
    return campaign, snapshot, campaign.variant_a


def group_members(pgid: int) -> list[int]:
    """Every live process whose process group is ``pgid`` (the run: launcher and ranks)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def run_group(job: TrainingJob) -> int | None:
    job.refresh_from_db()
    group_file = Path(job.output_dir) / "process-group" if job.output_dir else None
    return int(group_file.read_text()) if group_file and group_file.is_file() else None


def still_running(job: TrainingJob) -> bool:
    """True while the job has not ended; a job that ended fails the test at once with its error
    (instead of the wait for its processes running out)."""
    job.refresh_from_db()
    assert job.status in ("queued", "running"), f"job {job.pk} ended {job.status}: {job.error}"
    return True


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_reward_job_runs_to_completion_through_a_worker(job_setup, redis_worker_env, start_worker):
    _, snapshot, variant = job_setup
    worker = start_worker(redis_worker_env, queues="jobs")
    config = parse_config("reward", {"num_train_epochs": 2, "per_device_train_batch_size": 4, "zero_stage": 0,
                                     "validation_fraction": 0.5})
    job = create_job("reward", config, make_user("engineer"), snapshot=snapshot, base_variant=variant)
    wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"]).exists(), 600, worker)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.progress == 1.0 and job.attempts == 1
    assert (Path(job.output_dir) / "model.safetensors").is_file()
    names = set(TrainingMetric.objects.filter(job=job).values_list("name", flat=True))
    assert "loss" in names or "train/loss" in names, names
    assert any("accuracy" in name for name in names), names
    steps = list(TrainingMetric.objects.filter(job=job, name__contains="loss").values_list("step", flat=True))
    assert len(steps) >= 2


def test_a_cancelled_two_rank_job_leaves_no_process(job_setup, redis_worker_env, start_worker):
    _, snapshot, variant = job_setup
    worker = start_worker(redis_worker_env, queues="jobs")
    config = parse_config("reward", {"num_train_epochs": 100, "per_device_train_batch_size": 2, "ranks": 2,
                                     "zero_stage": 2})
    job = create_job("reward", config, make_user("engineer"), snapshot=snapshot, base_variant=variant)
    # The launcher and both ranks: at least three processes in the run's group.
    pgid = wait_for(lambda: still_running(job) and run_group(job), 300, worker)
    members = wait_for(lambda: still_running(job) and (m := group_members(pgid)) and len(m) >= 3 and m, 600, worker)
    assert cancel_job(job) == "running"
    wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status="cancelled").exists(), 120, worker)
    assert not [pid for pid in members if alive(pid)]
    assert group_members(pgid) == []


def test_a_job_whose_worker_is_killed_is_resumed_never_stuck(job_setup, redis_worker_env, start_worker):
    _, snapshot, variant = job_setup
    worker = start_worker(redis_worker_env, queues="jobs")
    config = parse_config("reward", {"num_train_epochs": 100, "per_device_train_batch_size": 2, "zero_stage": 0})
    job = create_job("reward", config, make_user("engineer"), snapshot=snapshot, base_variant=variant)
    pgid = wait_for(lambda: still_running(job) and run_group(job), 300, worker)
    wait_for(lambda: still_running(job) and group_members(pgid), 60, worker)
    for pid in [*pool_children(worker.process.pid), worker.process.pid]:
        os.kill(pid, signal.SIGKILL)
    worker.process.wait()
    # The run dies with its worker (PR_SET_PDEATHSIG), not left training unwatched.
    wait_for(lambda: not group_members(pgid), 60)
    assert TrainingJob.objects.get(pk=job.pk).status == "running"  # until a sweeper sees the stale heartbeat
    second = start_worker(redis_worker_env, queues="jobs")
    wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status="running", attempts=2).exists()
             and run_group(job), 300, second)
    assert cancel_job(job) == "running"
    wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status="cancelled").exists(), 120, second)


def test_bad_jobs_are_refused_before_anything_is_queued(job_setup, tmp_path):
    campaign, snapshot, variant = job_setup
    with pytest.raises(ConfigError) as error:
        parse_config("reward", {"learning_rate": "fast"})
    assert error.value.field == "learning_rate"
    with pytest.raises(ConfigError, match="not a setting"):
        parse_config("reward", {"deepspeed": "/etc/passwd"})
    with pytest.raises(ConfigError) as error:
        parse_config("reward", {"ranks": 9})
    assert error.value.field == "ranks"
    outside = AgentVariant.objects.create(name="outside", checkpoint=str(tmp_path / "elsewhere"))
    sneaky = AgentVariant.objects.create(name="sneaky", checkpoint=str(tmp_path / "var" / "checkpoints" / ".." / ".."))
    for bad in (outside, sneaky):
        with pytest.raises(Refused, match="outside the allowed checkpoint roots"):
            create_job("reward", RewardJobConfig(), None, snapshot=snapshot, base_variant=bad)
    # A snapshot of ties only has no usable pair.
    ties = campaign_with_votes(2, checkpoint=variant.checkpoint)
    ties_only = ties.scenarios.all()
    Comparison.objects.filter(scenario__in=ties_only).update(
        overall="tie", strength=1, speaking="tie", listening="na", manipulation="na", identity="na", qa_safety="na")
    tied, _ = create_snapshot([ties])
    with pytest.raises(Refused, match="no usable pair"):
        create_job("reward", RewardJobConfig(), None, snapshot=tied, base_variant=variant)
    with pytest.raises(Refused, match="needs a succeeded reward-model job"):
        create_job("ppo", parse_config("ppo", {}), None, snapshot=None, base_variant=variant)
    assert not TrainingJob.objects.exists()
