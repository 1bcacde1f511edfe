"""The engineers' job pages: a malformed configuration gets a form error naming the field and
starts nothing, refusals are shown on the form, the job page shows progress and curves, and only
engineers get in. The runs themselves, through a real worker, are in tests/workers/test_jobs.py
and tests/workers/test_job_page_in_browser.py."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling_app.actions.snapshots import create_snapshot
from labeling_app.models import AgentVariant, TrainingJob, TrainingMetric
from model.agent import AgentConfig, AgentModel
from tests.labeling_app.test_jobs_snapshots import campaign_with_votes

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(tmp_path, settings, media_root):
    var = tmp_path / "var"
    settings.HER_JOB_ROOT = var / "jobs"
    settings.HER_CHECKPOINT_ROOTS = [var / "jobs", var / "checkpoints"]
    agent_dir = var / "checkpoints" / "debug"
    AgentModel(AgentConfig.named("debug")).save_pretrained(agent_dir, card={"data": "random init, tests"})
    campaign = campaign_with_votes(3, agent=AgentModel.from_pretrained(str(agent_dir)), checkpoint=str(agent_dir))
    snapshot, _ = create_snapshot([campaign], name="three")
    base = AgentVariant.objects.create(name="debug-base", checkpoint=str(agent_dir))
    outside = AgentVariant.objects.create(name="outside", checkpoint=str(tmp_path / "elsewhere"))
    return snapshot, base, outside


def post_job(client, **fields):
    return client.post(reverse("jobs:jobs"), {f"job-{key}": value for key, value in fields.items()})


def test_a_malformed_configuration_names_its_field_and_starts_nothing(client, engineer, setup):
    snapshot, base, outside = setup
    client.force_login(engineer)
    good = dict(kind="reward", base_variant=base.pk, snapshot=snapshot.pk)
    for field, value in [("learning_rate", "fast"), ("learning_rate", "5"), ("ranks", "9"),
                         ("num_train_epochs", "-1"), ("seed", "1.5")]:
        response = post_job(client, **good, **{field: value})
        assert response.status_code == 400, (field, value)
        errors = response.context["form"].errors
        assert field in errors, (field, value, errors)
    response = post_job(client, **dict(good, kind="sft; rm -rf /"))
    assert "kind" in response.context["form"].errors
    response = post_job(client, **dict(good, base_variant=outside.pk))
    assert response.status_code == 400 and "outside" in str(response.context["form"].non_field_errors())
    response = post_job(client, kind="ppo", base_variant=base.pk)
    assert response.status_code == 400 and "succeeded reward-model job" in str(response.context["form"].non_field_errors())
    assert TrainingJob.objects.count() == 0

    response = post_job(client, **good, num_train_epochs="2", per_device_train_batch_size="4")
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("jobs:job", args=[job.pk])
    assert job.config["num_train_epochs"] == 2.0 and job.config["per_device_train_batch_size"] == 4
    assert job.status == TrainingJob.Status.QUEUED


def test_the_job_page_shows_progress_curves_and_cancels(client, engineer, setup):
    snapshot, base, _ = setup
    client.force_login(engineer)
    post_job(client, kind="reward", base_variant=base.pk, snapshot=snapshot.pk)
    job = TrainingJob.objects.get()
    TrainingJob.objects.filter(pk=job.pk).update(status="running", progress=0.4)
    TrainingMetric.objects.bulk_create([TrainingMetric(job=job, step=s, name="loss", value=0.7 - s / 100)
                                        for s in range(1, 6)])
    page = client.get(reverse("jobs:job", args=[job.pk])).content.decode()
    assert 'value="40"' in page and 'http-equiv="refresh"' in page
    assert page.count('<polyline class="line"') == 1 and page.count('class="point"') == 5
    assert client.post(reverse("jobs:cancel", args=[job.pk])).status_code == 302
    job.refresh_from_db()
    assert job.cancel_requested
    TrainingJob.objects.filter(pk=job.pk).update(status="succeeded", progress=1.0)
    page = client.get(reverse("jobs:job", args=[job.pk])).content.decode()
    assert 'http-equiv="refresh"' not in page and 'id="cancel"' not in page


def test_a_snapshot_of_campaigns_without_tokens_is_refused_on_the_page(client, engineer, settings, media_root):
    from tests.labeling_app.conftest import make_campaign

    campaign = make_campaign()
    client.force_login(engineer)
    response = client.post(reverse("jobs:snapshot"), {"snapshot-campaigns": [campaign.pk], "snapshot-name": "x",
                                                      "snapshot-min_confidence": "1"})
    assert response.status_code == 400
    assert "nothing to snapshot" in str(response.context["snapshot_form"].errors["campaigns"])


def test_only_engineers_get_the_job_pages(client, annotator, lead, engineer):
    for user in (annotator, lead):
        client.force_login(user)
        assert client.get(reverse("jobs:jobs")).status_code == 403
        assert client.post(reverse("jobs:snapshot"), {}).status_code == 403
        assert client.get(reverse("jobs:job", args=[1])).status_code == 403
    client.logout()
    assert client.get(reverse("jobs:jobs")).status_code == 302
    client.force_login(engineer)
    assert client.get(reverse("jobs:jobs")).status_code == 200
