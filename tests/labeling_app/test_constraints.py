"""The database itself keeps the preference data whole, whatever code writes to it."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from labeling_app.models import (
    AgentVariant,
    Assignment,
    Campaign,
    Candidate,
    Comparison,
    Round,
    Scenario,
)

pytestmark = pytest.mark.django_db


def make_item(annotator_name="ann"):
    """A campaign with one scenario, one annotator's round on it and both candidates."""
    a = AgentVariant.objects.create(name=f"a-{uuid.uuid4().hex[:6]}")
    b = AgentVariant.objects.create(name=f"b-{uuid.uuid4().hex[:6]}", audio_temperature=0.7)
    campaign = Campaign.objects.create(name="c", slug=f"c-{uuid.uuid4().hex[:6]}", variant_a=a, variant_b=b)
    scenario = Scenario.objects.create(campaign=campaign, title="s", instructions="say hi")
    annotator = get_user_model().objects.create_user(annotator_name, password="x" * 12)
    return campaign, scenario, annotator


def make_round(scenario, annotator):
    assignment = Assignment.objects.create(
        scenario=scenario, annotator=annotator, expires_at=timezone.now() + timedelta(minutes=30)
    )
    round_ = Round.objects.create(
        assignment=assignment, annotator=annotator, scenario=scenario, source="uploaded",
        media="rounds/x/turn.webm", media_extension="webm", media_sha256="0" * 64,
        size_bytes=10, container="webm", duration_seconds=2.0, has_audio=True, has_video=True,
        variant_a_on_left=True,
    )
    campaign = scenario.campaign
    cand_a = Candidate.objects.create(round=round_, variant=campaign.variant_a, seed=1)
    cand_b = Candidate.objects.create(round=round_, variant=campaign.variant_b, seed=2)
    return round_, cand_a, cand_b


def comparison_kwargs(scenario, annotator, round_, cand_a, cand_b, **overrides):
    values = dict(
        submission_token=uuid.uuid4(), annotator=annotator, scenario=scenario, round=round_,
        candidate_a=cand_a, candidate_b=cand_b, speaking="a", listening="b", manipulation="na",
        identity="tie", qa_safety="both_bad", overall="a", strength=2, confidence=4,
        time_spent_ms=12000, plays_a=1, plays_b=1,
    )
    values.update(overrides)
    return values


def test_second_comparison_by_same_annotator_on_same_item_is_rejected():
    _, scenario, annotator = make_item()
    round_, cand_a, cand_b = make_round(scenario, annotator)
    Comparison.objects.create(**comparison_kwargs(scenario, annotator, round_, cand_a, cand_b))
    # A second round cannot exist for the same assignment either, so reuse the candidates
    # under a different round object to isolate the (annotator, scenario) constraint.
    other_scenario = Scenario.objects.create(campaign=scenario.campaign, title="t", instructions="x")
    round2, c2a, c2b = make_round(other_scenario, annotator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(
            **comparison_kwargs(scenario, annotator, round2, c2a, c2b)
        )
    assert Comparison.objects.filter(annotator=annotator, scenario=scenario).count() == 1


def test_same_submission_token_cannot_make_a_second_row():
    _, scenario, annotator = make_item()
    round_, cand_a, cand_b = make_round(scenario, annotator)
    token = uuid.uuid4()
    Comparison.objects.create(**comparison_kwargs(scenario, annotator, round_, cand_a, cand_b, submission_token=token))
    other = Scenario.objects.create(campaign=scenario.campaign, title="t", instructions="x")
    round2, c2a, c2b = make_round(other, annotator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(**comparison_kwargs(other, annotator, round2, c2a, c2b, submission_token=token))


@pytest.mark.parametrize("field", ["speaking", "listening", "manipulation", "identity", "qa_safety"])
def test_invalid_dimension_choice_is_rejected_by_the_database(field):
    _, scenario, annotator = make_item()
    round_, cand_a, cand_b = make_round(scenario, annotator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(
            **comparison_kwargs(scenario, annotator, round_, cand_a, cand_b, **{field: "maybe"})
        )
    assert not Comparison.objects.exists()


def test_invalid_dimension_choice_is_rejected_by_validation_with_a_message():
    _, scenario, annotator = make_item()
    round_, cand_a, cand_b = make_round(scenario, annotator)
    comparison = Comparison(**comparison_kwargs(scenario, annotator, round_, cand_a, cand_b, listening="maybe"))
    with pytest.raises(ValidationError) as excinfo:
        comparison.full_clean()
    assert "listening" in excinfo.value.message_dict
    assert "not a valid choice" in excinfo.value.message_dict["listening"][0]


@pytest.mark.parametrize(
    "overrides",
    [{"overall": "c"}, {"confidence": 6}, {"confidence": 0}, {"strength": 4}, {"overall": "tie", "strength": 3}],
)
def test_invalid_overall_fields_are_rejected(overrides):
    _, scenario, annotator = make_item()
    round_, cand_a, cand_b = make_round(scenario, annotator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(**comparison_kwargs(scenario, annotator, round_, cand_a, cand_b, **overrides))


def test_a_pair_of_the_same_candidate_is_rejected():
    _, scenario, annotator = make_item()
    round_, cand_a, _ = make_round(scenario, annotator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(**comparison_kwargs(scenario, annotator, round_, cand_a, cand_a))


def test_an_annotator_gets_an_item_once():
    _, scenario, annotator = make_item()
    expires = timezone.now() + timedelta(minutes=5)
    Assignment.objects.create(scenario=scenario, annotator=annotator, expires_at=expires, status="expired")
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(scenario=scenario, annotator=annotator, expires_at=expires)


def test_a_campaign_cannot_compare_a_variant_with_itself():
    variant = AgentVariant.objects.create(name="solo")
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.create(name="x", slug="x", variant_a=variant, variant_b=variant)


def test_variant_sampling_parameters_are_checked():
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentVariant.objects.create(name="cold", audio_temperature=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentVariant.objects.create(name="onestep", diffusion_steps=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentVariant.objects.create(name="frozen", visual_temperature=0)


def test_history_is_never_cascaded_away():
    campaign, scenario, annotator = make_item()
    round_, cand_a, cand_b = make_round(scenario, annotator)
    Comparison.objects.create(**comparison_kwargs(scenario, annotator, round_, cand_a, cand_b))
    for obj in (campaign.variant_a, campaign, scenario, round_, cand_a, annotator):
        with pytest.raises(ProtectedError), transaction.atomic():
            obj.delete()
    assert Comparison.objects.count() == 1
