"""The ``jobs`` queue: run a training job as a subprocess and watch it until it ends.

``run_training_job(job_id)`` claims the job (labeling_app.lifecycle), turns its validated config
(labeling_app.actions.jobs) into the flags of ``python -m alignment.reward`` or ``python -m
alignment.ppo`` (which start the ``deepspeed`` launcher themselves for more than one rank), and
runs it in its own process group under ``HER_JOB_ROOT/job-<id>/attempt-<n>``. While it runs,
the new lines of its ``metrics.jsonl`` become ``TrainingMetric`` rows and its progress goes out
with each heartbeat. A cancel request or a lost row kills the whole group (every rank); so does
the worker's death (the subprocess gets SIGTERM through ``PR_SET_PDEATHSIG``, and the next attempt
kills any group an earlier attempt left behind). A run that exits 0 with its "done" line
finishes the job with its run directory; a PPO job's policy becomes a new ``AgentVariant``
whose parent is the initial one. A refused run (exit 2) or a crash fails it with the log tail;
a run killed by a signal (out of memory) is retried.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from alignment.metrics_log import METRICS_FILE, read_metrics
from labeling_app import lifecycle
from labeling_app.actions.jobs import ConfigError, PPOJobConfig, RewardJobConfig, checkpoint_allowed, parse_config
from labeling_app.actions.snapshots import snapshot_directory
from labeling_app.lifecycle import JOBS, Attempt, Heartbeat, Superseded
from labeling_app.models import AgentVariant, TrainingJob, TrainingMetric
from workers.attempts import guarded
from workers.celery import app

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
KILL_GRACE_SECONDS = 10.0
LOG_FILE, GROUP_FILE = "log.txt", "process-group"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class JobRefused(ValueError):
    """The job cannot run as configured: another attempt would fail the same way."""


@app.task(name="workers.jobs.run_training_job", bind=True)
def run_training_job(self, job_id: int) -> str:
    attempt = lifecycle.claim(JOBS, job_id, worker=self.request.hostname or "worker")
    if attempt is None:
        return "nothing to do"
    job = TrainingJob.objects.select_related("snapshot", "base_variant", "reward_job").get(pk=job_id)
    guard = guarded(attempt, permanent=(JobRefused, ConfigError), describe=str)
    with guard as heartbeat:
        return run(job, attempt, heartbeat)
    return guard.outcome


def run(job: TrainingJob, attempt: Attempt, heartbeat: Heartbeat) -> str:
    job_dir = settings.HER_JOB_ROOT / f"job-{job.pk}"
    kill_leftovers(job_dir)
    out = job_dir / f"attempt-{attempt.number}"
    out.mkdir(parents=True, exist_ok=True)
    argv = command(job, out)
    attempt.rows().update(output_dir=str(out))
    logger.info("job %s attempt %s: %s", job.pk, attempt.number, " ".join(argv))
    with open(out / LOG_FILE, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, preexec_fn=_die_with_parent,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    (out / GROUP_FILE).write_text(str(process.pid))
    try:
        code, last = watch(job, process, out, heartbeat)
    finally:
        kill_group(process)
        (out / GROUP_FILE).unlink(missing_ok=True)
    if heartbeat.superseded:
        raise Superseded(f"job {job.pk} attempt {attempt.number} was superseded")
    if heartbeat.cancel_requested:
        lifecycle.cancel(attempt, "Cancelled by request; the run and its ranks were stopped.")
        return "cancelled"
    tail = log_tail(out)
    if code == 0 and last.get("event") == "done":
        return finish(job, attempt, out, last)
    if code is not None and code < 0 and code != -signal.SIGTERM:
        raise RuntimeError(f"the run was killed by signal {-code}; log tail:\n{tail}")
    reason = "refused the job" if code == 2 else f"exited with status {code}"
    lifecycle.fail(attempt, f"The run {reason}. Log tail:\n{tail}")
    return "failed"


def command(job: TrainingJob, out: Path) -> list[str]:
    """The subprocess command of ``job``: only the config's typed fields and paths from rows."""
    config = parse_config(job.kind, job.config)
    base = job.base_variant.checkpoint if job.base_variant else "default"
    if not checkpoint_allowed(base):
        raise JobRefused(f"The base checkpoint {base} lies outside the allowed checkpoint roots.")
    if isinstance(config, RewardJobConfig):
        if job.snapshot is None:
            raise JobRefused("A reward job needs a snapshot.")
        paths = ["--snapshot", snapshot_directory(job.snapshot), "--base", base, "--out", str(out)]
        return [sys.executable, "-m", "alignment.reward", *paths, *flags(config)]
    assert isinstance(config, PPOJobConfig)
    reward = job.reward_job.output_dir if job.reward_job else ""
    if not reward or not checkpoint_allowed(reward):
        raise JobRefused(f"The reward model {reward or '(none)'} is missing or outside the allowed roots.")
    paths = ["--output_dir", str(out), "--reward_model", reward, "--policy", base]
    if job.snapshot is not None:
        paths += ["--snapshot", snapshot_directory(job.snapshot)]
    return [sys.executable, "-m", "alignment.ppo", *paths, *flags(config), *sampling_flags(job.base_variant)]


def sampling_flags(variant: AgentVariant | None) -> list[str]:
    """PPO samples its rollouts as the variant it improves samples its candidates (temperatures,
    top-k, denoising steps): the policy is optimised under the distribution it will be deployed
    with, and its variant inherits those settings (`register_policy`). No variant: PPO's defaults."""
    if variant is None:
        return []
    result = ["--audio_temperature", repr(variant.audio_temperature), "--visual_temperature",
              repr(variant.visual_temperature), "--diffusion_steps", str(variant.diffusion_steps)]
    return result + (["--top_k", str(variant.top_k)] if variant.top_k else [])  # 0: the whole vocabulary


def flags(config: RewardJobConfig | PPOJobConfig) -> list[str]:
    result = []
    for name, value in vars(config).items():
        result += [f"--{name}", str(value).lower() if isinstance(value, bool) else repr(value)]
    return result


def watch(job: TrainingJob, process: subprocess.Popen, out: Path, heartbeat: Heartbeat) -> tuple[int | None, dict]:
    """Stream metrics until the run exits or must stop; (exit status or None, the last line)."""
    seen, last = 0, {}
    while True:
        code = process.poll()
        lines = read_metrics(out / METRICS_FILE)
        if len(lines) > seen:
            store_metrics(job, lines[seen:])
            seen, last = len(lines), lines[-1]
            if "progress" in last:
                heartbeat.progress = float(last["progress"])
        if code is not None or heartbeat.stop_requested:
            return code, last
        time.sleep(POLL_SECONDS)


def store_metrics(job: TrainingJob, lines: list[dict]) -> None:
    rows = [TrainingMetric(job=job, step=int(line["step"]), name=name[:100], value=value)
            for line in lines for name, value in line.get("metrics", {}).items()]
    TrainingMetric.objects.bulk_create(rows, ignore_conflicts=True)


def finish(job: TrainingJob, attempt: Attempt, out: Path, done: dict) -> str:
    with transaction.atomic():
        if not lifecycle.complete(attempt, output_dir=str(out)):
            return "superseded"
        if job.kind == TrainingJob.Kind.PPO:
            register_policy(job, Path(done["output"]))
    return "succeeded"


def register_policy(job: TrainingJob, policy: Path) -> AgentVariant:
    """The PPO job's policy as a variant: the parent's sampling settings, a card in the description."""
    parent = job.base_variant
    card = json.loads((policy / "card.json").read_text()) if (policy / "card.json").is_file() else {}
    reward, snapshot = job.reward_job, job.snapshot
    description = (f"PPO job {job.pk} from {parent.name if parent else 'default'}; reward model: job "
                   f"{reward.pk} ({reward.output_dir}) on snapshot "
                   f"{reward.snapshot.name if reward.snapshot else '-'} ({reward.snapshot.sha256 if reward.snapshot else '-'})"
                   + (f"; prompts from snapshot {snapshot.sha256}" if snapshot else "")
                   + (f"; card: {json.dumps(card, sort_keys=True)}" if card else ""))
    sampling = {field: getattr(parent, field) for field in
                ("audio_temperature", "visual_temperature", "top_k", "diffusion_steps")} if parent else {}
    return AgentVariant.objects.create(name=f"ppo-job-{job.pk}", checkpoint=str(policy), parent=parent,
                                       produced_by=job, description=description, **sampling)


def log_tail(out: Path, chars: int = 1500) -> str:
    path = out / LOG_FILE
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - chars))
        return f.read().decode(errors="replace")


def kill_group(process: subprocess.Popen) -> None:
    """SIGTERM the run's process group (the launcher and every rank), SIGKILL after a grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def kill_leftovers(job_dir: Path) -> None:
    """Kill the process groups that earlier attempts of this job left on this machine (their
    worker died before it could); a group id that no longer exists is skipped."""
    for group_file in job_dir.glob(f"attempt-*/{GROUP_FILE}"):
        _signal_group(int(group_file.read_text()), signal.SIGKILL)
        group_file.unlink()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the worker process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
