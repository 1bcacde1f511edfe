"""Engineers' pages: freeze snapshots, launch reward-model and PPO jobs, watch and cancel them.

Engineers (the ``add_trainingjob`` permission) only; everyone else gets 403. A running job's
page reloads itself every few seconds (a meta refresh: no script) and shows its progress and
its curves, drawn from the ``TrainingMetric`` rows the worker copies from the run.
"""

from __future__ import annotations

from collections import defaultdict
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from labeling_app import charts
from labeling_app.actions import Refused
from labeling_app.actions.jobs import cancel_job, create_job
from labeling_app.actions.snapshots import create_snapshot
from labeling_app.models import PreferenceSnapshot, TrainingJob, TrainingMetric
from labeling_app.training_forms import SnapshotForm, TrainingJobForm
from labeling_app.views.access import page_error

NOT_AN_ENGINEER = "Only engineers launch and watch training jobs."
FINISHED = (TrainingJob.Status.SUCCEEDED, TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED)
REFRESH_SECONDS = 3


def engineer_required(view):
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.has_perm("labeling_app.add_trainingjob"):
            return page_error(request, NOT_AN_ENGINEER, 403)
        return view(request, *args, **kwargs)

    return wrapped


@engineer_required
def jobs(request: HttpRequest) -> HttpResponse:
    """The job list with the launch form (POST launches) and the snapshot form."""
    form = TrainingJobForm(request.POST or None, prefix="job") if request.method == "POST" else TrainingJobForm(prefix="job")
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = create_job(data["kind"], data["config"], request.user, snapshot=data["snapshot"],
                             base_variant=data["base_variant"], reward_job=data["reward_job"])
        except Refused as exc:  # a snapshot without usable pairs, a checkpoint outside the roots...
            form.add_error(None, exc.message)
        else:
            return redirect("jobs:job", job.pk)
    return _jobs_page(request, form, SnapshotForm(prefix="snapshot"), status=400 if form.errors else 200)


@require_POST
@engineer_required
def freeze_snapshot(request: HttpRequest) -> HttpResponse:
    form = SnapshotForm(request.POST, prefix="snapshot")
    if form.is_valid():
        try:
            create_snapshot(list(form.cleaned_data["campaigns"]), request.user,
                            min_confidence=form.cleaned_data["min_confidence"], name=form.cleaned_data["name"] or None)
        except Refused as exc:
            form.add_error("campaigns", exc.message)
        else:
            return redirect("jobs:jobs")
    return _jobs_page(request, TrainingJobForm(prefix="job"), form, status=400)


@engineer_required
def job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(TrainingJob.objects.select_related("base_variant", "snapshot", "reward_job"), pk=job_id)
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for name, step, value in TrainingMetric.objects.filter(job=job).order_by("name", "step").values_list(
            "name", "step", "value"):
        series[name].append((step, value))
    curves = [{"name": name, "chart": _curve(name, points), "last": points[-1][1]}
              for name, points in sorted(series.items()) if _charted(name)]
    return render(request, "jobs/job.html", {
        "job": job, "curves": curves, "finished": job.status in FINISHED, "refresh_seconds": REFRESH_SECONDS,
        "percent": round(job.progress * 100), "variants": job.produced_variants.all(),
    })


@require_POST
@engineer_required
def cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    cancel_job(get_object_or_404(TrainingJob, pk=job_id))
    return redirect("jobs:job", job_id)


def _jobs_page(request: HttpRequest, form: TrainingJobForm, snapshot_form: SnapshotForm, status: int) -> HttpResponse:
    return render(request, "jobs/jobs.html", {
        "form": form, "snapshot_form": snapshot_form,
        "jobs": TrainingJob.objects.select_related("base_variant", "snapshot")[:100],
        "snapshots": PreferenceSnapshot.objects.all()[:50],
    }, status=status)


def _charted(name: str) -> bool:
    """Scalars worth a curve: losses, rewards, accuracies, KL and the like (not timings or rates)."""
    return not any(word in name for word in ("runtime", "per_second", "epoch", "learning_rate", "grad_norm", "flos"))


def _curve(name: str, points: list[tuple[int, float]]):
    values = [v for _, v in points]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.05
    step = max(1, len(points) // 60)  # at most ~60 points: the chart stays readable
    shown = points[::step] if points[-1] in points[::step] else points[::step] + [points[-1]]
    return charts.line_chart([(str(s), v) for s, v in shown], f"{name} by step", low=low - pad, high=high + pad)
